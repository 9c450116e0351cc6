//! Mail and webhook posts as they wait in the store's outbox until a relay
//! or receiver accepts them (`docs/alerts.md`, "Delivery"), and the ids
//! that make a notice
//! recognisable: the `Message-ID` is derived from the episode (trigger key
//! and the slot it began firing) and the notice, so a mail sent twice
//! around a crash carries the same `Message-ID`; the outbox id is the
//! `Message-ID` after the time the mail was recorded (delivery order).

use std::time::{Duration, UNIX_EPOCH};

use hawkeye_mail::Mail;
use hawkeye_notify::Webhook;
use serde::{Deserialize, Serialize};

use crate::state::{Notice, UnixMillis};
use crate::state_key::fnv1a;

/// The version of [`OutboxMail`] written by this code.
const OUTBOX_VERSION: u32 = 1;

/// One mail in the outbox (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxMail {
    pub v: u32,
    /// The trigger's state key.
    pub key: String,
    /// When it was recorded (unix ms): given up on after `MAIL_MAX_AGE`.
    pub created: UnixMillis,
    pub subject: String,
    pub body: String,
    pub from: String,
    pub to: Vec<String>,
    #[serde(default)]
    pub cc: Vec<String>,
    #[serde(default)]
    pub bcc: Vec<String>,
    pub message_id: String,
}

impl OutboxMail {
    pub fn new(key: &str, created: UnixMillis, mail: Mail) -> OutboxMail {
        OutboxMail {
            v: OUTBOX_VERSION,
            key: key.to_string(),
            created,
            message_id: mail.message_id.unwrap_or_default(),
            subject: mail.subject,
            body: mail.body,
            from: mail.from,
            to: mail.to,
            cc: mail.cc,
            bcc: mail.bcc,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn from_json(s: &str) -> Result<OutboxMail, serde_json::Error> {
        serde_json::from_str(s)
    }

    pub fn mail(&self) -> Mail {
        Mail {
            subject: self.subject.clone(),
            body: self.body.clone(),
            from: self.from.clone(),
            to: self.to.clone(),
            cc: self.cc.clone(),
            bcc: self.bcc.clone(),
            message_id: Some(self.message_id.clone()).filter(|id| !id.is_empty()),
            date: Some(UNIX_EPOCH + Duration::from_millis(self.created)),
        }
    }
}

/// One webhook post in the outbox (JSON): told from a mail by its `url`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxHook {
    pub v: u32,
    /// The trigger's state key.
    pub key: String,
    /// When it was recorded (unix ms): given up on after `MAIL_MAX_AGE`.
    pub created: UnixMillis,
    pub url: String,
    /// The JSON posted, as rendered when the notice was recorded.
    pub body: String,
    /// Stable across retries and agents (the `Idempotency-Key` header).
    pub post_id: String,
}

impl OutboxHook {
    pub fn new(key: &str, created: UnixMillis, hook: Webhook) -> OutboxHook {
        OutboxHook {
            v: OUTBOX_VERSION,
            key: key.to_string(),
            created,
            url: hook.url,
            body: hook.body,
            post_id: hook.id,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn webhook(&self) -> Webhook {
        Webhook {
            url: self.url.clone(),
            body: self.body.clone(),
            id: self.post_id.clone(),
        }
    }
}

/// An outbox entry as read back: a mail or a webhook post.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Outboxed {
    // First: a mail has no `url`, so it never reads as a post.
    Hook(OutboxHook),
    Mail(OutboxMail),
}

impl Outboxed {
    pub fn from_json(s: &str) -> Result<Outboxed, serde_json::Error> {
        serde_json::from_str(s)
    }

    /// When it was recorded.
    pub fn created(&self) -> UnixMillis {
        match self {
            Outboxed::Hook(h) => h.created,
            Outboxed::Mail(m) => m.created,
        }
    }

    /// What keeps its order with what: a trigger's mails, or its posts to
    /// one URL (a resolved never overtakes its firing on one channel, and
    /// a receiver that is down holds back nothing else).
    pub fn channel(&self) -> (&str, &str) {
        match self {
            Outboxed::Hook(h) => (&h.key, &h.url),
            Outboxed::Mail(m) => (&m.key, ""),
        }
    }
}

/// The outbox id and `Idempotency-Key` of a post to `url` of the notice
/// whose `Message-ID` is `message_id`.
pub fn post_id(message_id: &str, url: &str) -> String {
    format!("{message_id}.hook-{:016x}", fnv1a(url.as_bytes()))
}

/// The outbox id of a mail recorded at `recorded` (unix ms): the store
/// hands out entries due at the same time in id order, so mail recorded
/// while a relay was down goes out in the order it was recorded.
pub fn outbox_id(recorded: UnixMillis, message_id: &str) -> String {
    format!("{recorded:016}-{message_id}")
}

/// The id of a firing episode: its trigger and the slot it began.
pub fn episode(key: &str, since: Option<UnixMillis>) -> String {
    let text = format!("{key}\0{}", since.unwrap_or(0));
    format!("{:016x}", fnv1a(text.as_bytes()))
}

/// The `Message-ID` (and outbox id) of a notice: a repeat is told apart by
/// the slot it was sent at.
pub fn message_id(
    key: &str,
    since: Option<UnixMillis>,
    notice: Notice,
    slot: UnixMillis,
) -> String {
    let episode = episode(key, since);
    match notice {
        Notice::Repeat => format!("{episode}.repeat-{slot}@hawkeye"),
        // Held back by a mute, or to recipients a higher level covered
        // until now: not the episode's first firing mail.
        Notice::Firing if since != Some(slot) => format!("{episode}.firing-{slot}@hawkeye"),
        other => format!("{episode}.{}@hawkeye", other.name()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_per_episode_and_notice() {
        let firing = message_id("k", Some(1000), Notice::Firing, 1000);
        assert_eq!(firing, message_id("k", Some(1000), Notice::Firing, 1000));
        assert!(firing.ends_with(".firing@hawkeye"), "{firing}");
        assert_ne!(
            firing,
            message_id("k", Some(2000), Notice::Firing, 2000),
            "another episode"
        );
        assert_ne!(
            firing,
            message_id("k2", Some(1000), Notice::Firing, 1000),
            "another trigger"
        );
        assert_eq!(
            message_id("k", Some(1000), Notice::Firing, 3000),
            format!("{}.firing-3000@hawkeye", episode("k", Some(1000))),
            "a firing mail after the first (a mute ended, inhibition lifted)"
        );
        assert_ne!(
            message_id("k", Some(1000), Notice::Repeat, 5000),
            message_id("k", Some(1000), Notice::Repeat, 9000)
        );
        let mail = Mail {
            subject: "s".into(),
            body: "b".into(),
            from: "f@x".into(),
            to: vec!["t@x".into()],
            cc: vec![],
            bcc: vec![],
            message_id: Some(firing.clone()),
            date: Some(UNIX_EPOCH + Duration::from_millis(7)),
        };
        let stored = OutboxMail::new("k", 7, mail.clone());
        assert_eq!(
            OutboxMail::from_json(&stored.to_json()).unwrap().mail(),
            mail
        );
    }
}

//! Sending what the outbox holds (`docs/alerts.md`, "Delivery"): mail
//! through the [`Mailer`], webhook posts through the [`Notifier`].
//!
//! A mail (or post) is recorded in the store's outbox with the state change
//! that calls for it, and removed only when the relay (or receiver) has
//! accepted it. This task
//! claims due entries with a lease (so two agents sharing a store do not
//! both send one), sends them, and settles each: removed when accepted or
//! refused for good, due again after a backoff when the relay is down or
//! too slow (`SMTP_TIMEOUT`). An agent that dies leaves its entries to the
//! next one (itself restarted, or another agent) once their lease or retry
//! time has passed. Delivery is therefore at least once: a mail is sent
//! twice only if an agent dies after the relay accepted it and before the
//! entry was removed; its `Message-ID` is the same both times.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hawkeye_mail::{Mailer, QueueConfig, QueueStats};
use hawkeye_notify::Notifier;
use hawkeye_store::{OutboxEntry, Settle, Store, StoreError};
use tokio::sync::{watch, Notify};

use crate::outbox::{OutboxHook, OutboxMail, Outboxed};
use crate::state::UnixMillis;

/// How long a claimed entry is left to its claimant before another agent
/// may take it: longer than a send attempt may take (`SMTP_TIMEOUT`).
pub const DEFAULT_LEASE: Duration = Duration::from_secs(120);

/// How often the outbox is looked at when nothing wakes the task (mail
/// left by another agent, retries that fall due).
pub const POLL: Duration = Duration::from_millis(500);

pub struct Delivery {
    store: Arc<dyn Store>,
    mailer: Arc<dyn Mailer>,
    notifier: Arc<dyn Notifier>,
    config: QueueConfig,
    lease: Duration,
    /// Failed attempts per entry, for the backoff.
    attempts: HashMap<String, u32>,
    stats: QueueStats,
    mail_down: bool,
    hooks_down: bool,
    store_down: bool,
}

/// Which way an entry goes, for the log.
#[derive(Clone, Copy)]
enum Via {
    Mail,
    Webhook,
}

enum Outcome {
    Sent(Via),
    Retry(Via, String),
    /// Not tried: an earlier mail of the same trigger is to be retried.
    Deferred,
    Expired,
    Failed(String),
}

/// The claimed entries by channel (a trigger's mail, or its posts to one
/// URL: [`Outboxed::channel`]), each group in the order claimed (the order
/// they were recorded); an entry that cannot be read is alone.
fn by_channel(entries: &[OutboxEntry]) -> Vec<Vec<&OutboxEntry>> {
    type Channel = Option<(String, String)>;
    let mut groups: Vec<(Channel, Vec<&OutboxEntry>)> = Vec::new();
    for entry in entries {
        let key = Outboxed::from_json(&entry.body).ok().map(|o| {
            let (key, url) = o.channel();
            (key.to_string(), url.to_string())
        });
        match groups.iter_mut().find(|(k, _)| key.is_some() && *k == key) {
            Some((_, group)) => group.push(entry),
            None => groups.push((key, vec![entry])),
        }
    }
    groups.into_iter().map(|(_, group)| group).collect()
}

impl Delivery {
    /// Delivery of mail through `mailer` and of webhook posts through
    /// `notifier`.
    pub fn new(
        store: Arc<dyn Store>,
        mailer: Arc<dyn Mailer>,
        notifier: Arc<dyn Notifier>,
        config: QueueConfig,
        lease: Duration,
    ) -> Delivery {
        Delivery {
            store,
            mailer,
            notifier,
            config,
            lease,
            attempts: HashMap::new(),
            stats: QueueStats::default(),
            mail_down: false,
            hooks_down: false,
            store_down: false,
        }
    }

    pub fn stats(&self) -> QueueStats {
        self.stats
    }

    /// Claims what is due at `now` (at most `concurrency` entries), sends
    /// them at once and settles each. Returns how many were claimed.
    pub async fn deliver_due(&mut self, now: UnixMillis) -> Result<usize, StoreError> {
        let max = self.config.concurrency.max(1);
        let entries = match self.store.claim_outbox(now, self.lease, max).await {
            Ok(entries) => entries,
            Err(e) => {
                if !self.store_down {
                    self.store_down = true;
                    tracing::warn!(error = %e, "cannot read the outbox; mail waits in the store");
                }
                return Err(e);
            }
        };
        self.store_down = false;
        self.stats.queued += entries.len() as u64;
        let groups = by_channel(&entries);
        let sends = groups.iter().map(|g| self.send_in_order(g, now));
        let outcomes = futures::future::join_all(sends).await;
        for (group, outcomes) in groups.iter().zip(outcomes) {
            let mut retry_at = now;
            for (entry, outcome) in group.iter().zip(outcomes) {
                let settle = match outcome {
                    // Just after the one before it, to keep the order.
                    Outcome::Deferred => {
                        retry_at += 1;
                        Settle::RetryAt(retry_at)
                    }
                    outcome => self.settle(entry, outcome, now),
                };
                if let Settle::RetryAt(at) = settle {
                    retry_at = at;
                }
                // A failed settle leaves the entry leased: it is sent again
                // when the lease runs out (at least once).
                self.store.settle_outbox(&entry.id, settle).await?;
            }
        }
        Ok(entries.len())
    }

    /// Sends one trigger's mails one after the other (a resolved mail never
    /// overtakes its firing); after a failure the rest wait for the retry.
    async fn send_in_order(&self, group: &[&OutboxEntry], now: UnixMillis) -> Vec<Outcome> {
        let mut outcomes = Vec::with_capacity(group.len());
        for entry in group {
            if matches!(
                outcomes.last(),
                Some(Outcome::Retry(..) | Outcome::Deferred)
            ) {
                outcomes.push(Outcome::Deferred);
                continue;
            }
            outcomes.push(self.send(entry, now).await);
        }
        outcomes
    }

    async fn send(&self, entry: &OutboxEntry, now: UnixMillis) -> Outcome {
        let stored = match Outboxed::from_json(&entry.body) {
            Ok(stored) => stored,
            Err(e) => return Outcome::Failed(format!("unreadable outbox entry: {e}")),
        };
        let age = Duration::from_millis(now.saturating_sub(stored.created()));
        if age > self.config.max_age {
            return Outcome::Expired;
        }
        // Once the lease runs out another agent may send this entry: the
        // attempt stops then, whatever the mailer's or notifier's own
        // timeouts.
        let (via, attempt) = match &stored {
            Outboxed::Mail(m) => (Via::Mail, self.mail(m)),
            Outboxed::Hook(h) => (Via::Webhook, self.post(h)),
        };
        match tokio::time::timeout(self.lease, attempt).await {
            Ok(outcome) => outcome,
            Err(_) => Outcome::Retry(
                via,
                format!(
                    "the attempt took longer than its lease ({}, MAIL_LEASE)",
                    humantime::format_duration(self.lease)
                ),
            ),
        }
    }

    fn mail<'a>(&'a self, m: &'a OutboxMail) -> futures::future::BoxFuture<'a, Outcome> {
        Box::pin(async move {
            match self.mailer.send(m.mail()).await {
                Ok(()) => Outcome::Sent(Via::Mail),
                Err(e) if e.is_retryable() => Outcome::Retry(Via::Mail, e.to_string()),
                Err(e) => Outcome::Failed(e.to_string()),
            }
        })
    }

    fn post<'a>(&'a self, h: &'a OutboxHook) -> futures::future::BoxFuture<'a, Outcome> {
        Box::pin(async move {
            match self.notifier.post(&h.webhook()).await {
                Ok(()) => Outcome::Sent(Via::Webhook),
                Err(e) if e.is_retryable() => Outcome::Retry(Via::Webhook, e.to_string()),
                Err(e) => Outcome::Failed(e.to_string()),
            }
        })
    }

    fn settle(&mut self, entry: &OutboxEntry, outcome: Outcome, now: UnixMillis) -> Settle {
        match outcome {
            Outcome::Sent(via) => {
                self.stats.sent += 1;
                if let Some(attempts) = self.attempts.remove(&entry.id) {
                    tracing::info!(id = %entry.id, attempts = attempts + 1, "mail sent after retrying");
                }
                let (down, _, back) = self.down(via);
                if std::mem::take(down) {
                    tracing::info!("{back}; sending the outbox");
                }
                Settle::Done
            }
            Outcome::Retry(via, e) => {
                self.stats.retries += 1;
                let attempts = self.attempts.entry(entry.id.clone()).or_insert(0);
                *attempts += 1;
                let backoff = self
                    .config
                    .initial_backoff
                    .saturating_mul(1 << (*attempts - 1).min(20))
                    .min(self.config.max_backoff);
                let (down, cannot, _) = self.down(via);
                if !std::mem::replace(down, true) {
                    tracing::warn!(error = %e, "{cannot}; it stays in the outbox and is retried with backoff");
                } else {
                    tracing::debug!(error = %e, id = %entry.id, ?backoff, "retry failed");
                }
                Settle::RetryAt(now.saturating_add(backoff.as_millis() as u64))
            }
            Outcome::Expired => {
                self.stats.dropped += 1;
                self.stats.expired += 1;
                self.attempts.remove(&entry.id);
                tracing::error!(id = %entry.id, "notification dropped: still not sent after {:?} (MAIL_MAX_AGE)", self.config.max_age);
                Settle::Done
            }
            // Settled by the caller, after the mail it waited for.
            Outcome::Deferred => Settle::RetryAt(now),
            Outcome::Failed(e) => {
                self.stats.failed += 1;
                self.attempts.remove(&entry.id);
                tracing::error!(id = %entry.id, error = %e, "notification not sent and not retried");
                Settle::Done
            }
        }
    }

    /// Whether mail (or webhooks) were last found down, and what the log
    /// says when they go down and when they are back.
    fn down(&mut self, via: Via) -> (&mut bool, &'static str, &'static str) {
        match via {
            Via::Mail => (
                &mut self.mail_down,
                "cannot send mail",
                "mail server available again",
            ),
            Via::Webhook => (
                &mut self.hooks_down,
                "cannot post to a webhook",
                "webhook available again",
            ),
        }
    }

    /// Delivers until nothing is due.
    pub async fn drain(&mut self, now: impl Fn() -> UnixMillis) {
        while let Ok(n) = self.deliver_due(now()).await {
            if n == 0 {
                break;
            }
        }
    }
}

/// The delivery task: drains the outbox when woken (mail recorded) or every
/// [`POLL`], until `stop` is set; then one last drain.
pub(crate) async fn run(
    mut delivery: Delivery,
    wake: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
    stats: Arc<Mutex<QueueStats>>,
) {
    loop {
        delivery.drain(crate::scheduler::wall_clock_ms).await;
        if let Ok(mut s) = stats.lock() {
            *s = delivery.stats();
        }
        if *stop.borrow() {
            break;
        }
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(POLL) => {}
            _ = stop.changed() => {}
        }
    }
}

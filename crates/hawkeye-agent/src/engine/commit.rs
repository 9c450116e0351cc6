//! Step 4 of a tick: each transition becomes one atomic store write of the
//! state and its mail (rendered here, recorded in the outbox); only the
//! agent whose write succeeds has acted on the transition.

use futures::StreamExt;
use hawkeye_store::{AlertCommit, OutboxEntry, StoreError};

use super::decide::{Decision, Source, Transition};
use super::{Engine, Prepared, TickReport};
use crate::monitors::{Monitor, Notifier};
use crate::notification::{self, Alert, Rendered};
use crate::outbox::{self, OutboxHook, OutboxMail};
use crate::state::{Notice, UnixMillis};
use crate::webhook;

/// A group's `(tag, value)` pairs.
type Labels<'a> = &'a [(String, String)];

/// Commits in flight at once within a tick.
const COMMIT_CONCURRENCY: usize = 64;

/// The outbox entries posting `alert` (as `rendered`) to the transition's
/// webhooks (none when it has none): one body for all of them, built now
/// so that every retry posts the same bytes; `id` is the notice's
/// `Message-ID`.
fn posts(
    alert: &Alert,
    rendered: &Rendered,
    t: &Transition,
    id: &str,
    now: UnixMillis,
) -> Vec<OutboxEntry> {
    if t.recipients.hooks.is_empty() {
        return Vec::new();
    }
    let episode = outbox::episode(&t.key, t.since);
    let body = webhook::body(alert, rendered, &episode, alert.trigger.webhook_format);
    t.recipients
        .hooks
        .iter()
        .map(|url| {
            let post_id = outbox::post_id(id, url);
            let hook = hawkeye_notify::Webhook {
                url: url.clone(),
                body: body.clone(),
                id: post_id.clone(),
            };
            OutboxEntry {
                id: outbox::outbox_id(now, &post_id),
                body: OutboxHook::new(&t.key, now, hook).to_json(),
            }
        })
        .collect()
}

impl Engine {
    /// Renders each transition's mail and builds its store write.
    pub(super) fn prepare(
        &self,
        decision: Decision,
        plan: &super::plan::Plan,
        now: UnixMillis,
    ) -> Vec<Prepared> {
        decision
            .transitions
            .into_iter()
            .map(|t| {
                let (monitor, at, group) = match t.source {
                    Source::Check(n) => {
                        let i = plan.due[n];
                        let s = &self.monitors[i];
                        (&s.monitor, Some((i, plan.slots[n])), s.labels())
                    }
                    Source::Retired(r) => {
                        let r = &self.retired[r];
                        (&r.monitor, None, r.group.as_slice())
                    }
                };
                let slot = at.map_or(now, |(_, slot)| slot);
                self.prepare_one(t, monitor, (at, group), slot, now)
            })
            .collect()
    }

    fn prepare_one(
        &self,
        t: Transition,
        monitor: &Monitor,
        (at, group): (Option<(usize, UnixMillis)>, Labels),
        slot: UnixMillis,
        now: UnixMillis,
    ) -> Prepared {
        let mut commit = AlertCommit {
            key: t.key.clone(),
            expected: t.expected.clone(),
            new: t.next.as_ref().map(|n| n.to_json()),
            ttl: self.settings.state_ttl,
            outbox: Vec::new(),
        };
        let (mut subject, mut log_body) = (String::new(), None);
        // Rendered once, for whatever of mail, webhooks and log it goes to.
        let shown = monitor.notifier == Notifier::Log
            || t.recipients.has_mail()
            || !t.recipients.hooks.is_empty();
        if let Some(notice) = t.notice.filter(|_| shown) {
            let alert = Alert {
                monitor,
                trigger: &monitor.triggers[t.trigger],
                level: t.trigger + 1,
                notice,
                value: t.value,
                fired_at: t.since,
                checked_at: now,
                service: &self.settings.service,
                environment: &self.settings.environment,
                removed: at.is_none() && group.is_empty(),
                group,
                burn: t.burn,
            };
            let id = outbox::message_id(&t.key, t.since, notice, slot);
            let rendered = notification::render(&alert);
            subject = rendered.subject.clone();
            let posts = posts(&alert, &rendered, &t, &id, now);
            match monitor.notifier {
                Notifier::Email if t.recipients.has_mail() => {
                    let from = &self.settings.mail_from;
                    let mail = notification::mail(&alert, rendered, from, &t.recipients, &id);
                    commit.outbox.push(OutboxEntry {
                        id: outbox::outbox_id(now, &id),
                        body: OutboxMail::new(&t.key, now, mail).to_json(),
                    });
                }
                Notifier::Email => {}
                Notifier::Log => log_body = Some(rendered.body),
            }
            commit.outbox.extend(posts);
        }
        Prepared {
            transition: t,
            commit,
            subject,
            log_body,
            at,
            group: group.to_vec(),
        }
    }

    /// Writes the transitions; only the agent whose commit succeeds notifies.
    pub(super) async fn commit(
        &mut self,
        prepared: Vec<Prepared>,
        now: UnixMillis,
        report: &mut TickReport,
    ) {
        report.store_calls += prepared.len();
        self.stats.store_calls += prepared.len() as u64;
        let store = self.store.clone();
        let results: Vec<(Prepared, Result<bool, StoreError>)> = futures::stream::iter(prepared)
            .map(|p| {
                let store = &store;
                async move {
                    let r = store.commit_alert(&p.commit).await;
                    (p, r)
                }
            })
            .buffer_unordered(COMMIT_CONCURRENCY)
            .collect()
            .await;
        let mut mailed = false;
        let mut history = Vec::new();
        for (p, result) in results {
            match result {
                Ok(true) => {
                    mailed |= !p.commit.outbox.is_empty();
                    history.extend(self.history_entry(&p, now));
                    self.committed(p, report);
                }
                Ok(false) => {
                    self.stats.swaps_lost += 1;
                    tracing::debug!(key = %p.commit.key, "alert state changed by another agent; it handles this check");
                }
                Err(e) => {
                    self.stats.store_errors += 1;
                    self.outages
                        .failed(&e, now, self.settings.evaluation_delay_ms);
                    // Not written: as if not evaluated.
                    if let Some((i, slot)) = p.at {
                        let s = &mut self.monitors[i];
                        s.runs[p.transition.trigger].not_evaluated(slot, s.interval_ms);
                    }
                    report.store_error = true;
                }
            }
        }
        if mailed {
            if let Some(wake) = &self.outbox_wake {
                wake.notify_one();
            }
        }
        self.record_history(history, report).await;
    }

    fn committed(&mut self, p: Prepared, report: &mut TickReport) {
        report.transitions += 1;
        self.stats.transitions += 1;
        match &p.commit.new {
            Some(new) => self.known.insert(p.commit.key.clone(), new.clone()),
            None => self.known.remove(&p.commit.key),
        };
        let Some(notice) = p.transition.notice else {
            return;
        };
        self.stats.notices += 1;
        match &p.log_body {
            Some(body) => {
                tracing::warn!(target: "hawkeye::alert", notice = notice.name(), subject = %p.subject, body = %body, "alert");
            }
            None => {
                tracing::info!(notice = notice.name(), subject = %p.subject, to = ?p.transition.recipients.to, "alert recorded in the outbox");
            }
        }
        if notice == Notice::Resolved && p.at.is_none() {
            tracing::info!(key = %p.commit.key, "a removed trigger was resolved");
        }
        report.notified.push(super::Notified {
            monitor: p.at.map(|(i, _)| self.monitors[i].file_index(i)),
            level: p.transition.trigger + 1,
            key: p.commit.key.clone(),
            notice,
            subject: p.subject.clone(),
            group: p.group.clone(),
        });
        report.notices.push((p.subject, notice));
    }
}

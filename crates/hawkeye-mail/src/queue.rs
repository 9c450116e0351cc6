//! The sending queue: mail is handed over without waiting and sent by a
//! separate task, so evaluation never waits for a mail server.
//!
//! - Bounded: when the queue is full a new mail is dropped, counted and
//!   logged, so a long outage cannot grow memory without limit.
//! - Retried: a mail that fails with a retryable error
//!   ([`crate::MailError::is_retryable`]) is tried again with exponential backoff
//!   (capped) until it goes through or is [`QueueConfig::max_age`] old
//!   (default 24 h; then it is dropped, counted and logged, so a mail that
//!   can never go out — a 4xx for one recipient — cannot hold a sending
//!   slot for ever): a server that is down for an hour gets its alerts when
//!   it comes back. A mail the server refuses for good (5xx, invalid
//!   address) is logged and dropped.
//! - An outage is logged once when it starts and once when it ends, not for
//!   every attempt.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::mailer::{Mail, Mailer};

#[derive(Debug, Clone)]
pub struct QueueConfig {
    /// Mails waiting to be sent before new ones are dropped.
    pub capacity: usize,
    /// Mails sent at the same time.
    pub concurrency: usize,
    /// Wait before the first retry; doubled after each failure.
    pub initial_backoff: Duration,
    /// Longest wait between two attempts at one mail.
    pub max_backoff: Duration,
    /// Age (since it was queued) after which a mail that still fails with
    /// a retryable error is given up (counted in `dropped` and `expired`).
    pub max_age: Duration,
}

/// The default [`QueueConfig::max_age`].
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            capacity: 1000,
            concurrency: 4,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(10),
            max_age: DEFAULT_MAX_AGE,
        }
    }
}

/// Counters since the queue started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Accepted into the queue.
    pub queued: u64,
    /// Delivered to the mailer successfully.
    pub sent: u64,
    /// Failed attempts that were retried.
    pub retries: u64,
    /// Refused because the queue was full (or closed), or given up after
    /// `max_age` of retrying.
    pub dropped: u64,
    /// Of `dropped`: given up after `max_age` of retrying.
    pub expired: u64,
    /// Given up on because the error was permanent.
    pub failed: u64,
}

#[derive(Default)]
struct Counters {
    queued: AtomicU64,
    sent: AtomicU64,
    retries: AtomicU64,
    dropped: AtomicU64,
    expired: AtomicU64,
    failed: AtomicU64,
    /// Whether the mailer is failing right now (to log an outage once).
    outage: AtomicBool,
}

impl Counters {
    fn snapshot(&self) -> QueueStats {
        QueueStats {
            queued: self.queued.load(Ordering::Relaxed),
            sent: self.sent.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            expired: self.expired.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
        }
    }
}

/// The handle producers keep: cheap to clone, never blocks.
#[derive(Clone)]
pub struct MailSender {
    tx: mpsc::Sender<(Mail, Instant)>,
    counters: Arc<Counters>,
}

impl MailSender {
    /// Queues `mail`; returns false (and counts and logs the drop) when the
    /// queue is full or shut down.
    pub fn send(&self, mail: Mail) -> bool {
        match self.tx.try_send((mail, Instant::now())) {
            Ok(()) => {
                self.counters.queued.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(e) => {
                let dropped = self.counters.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                let (reason, mail) = match e {
                    mpsc::error::TrySendError::Full((m, _)) => ("the mail queue is full", m),
                    mpsc::error::TrySendError::Closed((m, _)) => ("the mail queue is shut down", m),
                };
                tracing::error!(
                    subject = %mail.subject,
                    to = ?mail.to,
                    dropped_total = dropped,
                    "mail dropped: {reason}"
                );
                false
            }
        }
    }

    pub fn stats(&self) -> QueueStats {
        self.counters.snapshot()
    }
}

/// The queue and its sending task.
pub struct MailQueue {
    sender: MailSender,
    close: watch::Sender<bool>,
    worker: JoinHandle<()>,
}

impl MailQueue {
    /// Starts the sending task on the current tokio runtime.
    pub fn start(mailer: Arc<dyn Mailer>, config: QueueConfig) -> MailQueue {
        let (tx, rx) = mpsc::channel(config.capacity.max(1));
        let (close, close_rx) = watch::channel(false);
        let counters = Arc::new(Counters::default());
        let worker = tokio::spawn(run(mailer, config, rx, close_rx, counters.clone()));
        MailQueue {
            sender: MailSender { tx, counters },
            close,
            worker,
        }
    }

    pub fn sender(&self) -> MailSender {
        self.sender.clone()
    }

    pub fn stats(&self) -> QueueStats {
        self.sender.stats()
    }

    /// Stops taking mail, keeps sending what is queued for up to `grace`,
    /// then gives up on the rest (logged with the count).
    pub async fn shutdown(self, grace: Duration) -> QueueStats {
        let _ = self.close.send(true);
        let mut worker = self.worker;
        if tokio::time::timeout(grace, &mut worker).await.is_err() {
            worker.abort();
            // Wait for the cancellation to take effect, so the queue is
            // closed (senders refused) when this returns.
            let _ = worker.await;
            let s = self.sender.stats();
            let unsent = s.queued.saturating_sub(s.sent + s.failed + s.expired);
            tracing::error!(
                unsent,
                "mail queue shut down with mail still unsent after {grace:?}"
            );
        }
        self.sender.stats()
    }
}

async fn run(
    mailer: Arc<dyn Mailer>,
    config: QueueConfig,
    rx: mpsc::Receiver<(Mail, Instant)>,
    close: watch::Receiver<bool>,
    counters: Arc<Counters>,
) {
    // The receiver as a stream that, once closing is asked for, stops
    // accepting new mail but still yields what is already queued.
    let mails = futures::stream::unfold(
        (rx, close, false),
        |(mut rx, mut close, mut closing)| async move {
            loop {
                if closing {
                    return rx.recv().await.map(|m| (m, (rx, close, closing)));
                }
                tokio::select! {
                    mail = rx.recv() => return mail.map(|m| (m, (rx, close, closing))),
                    _ = close.changed() => {
                        rx.close();
                        closing = true;
                    }
                }
            }
        },
    );
    let concurrency = config.concurrency.max(1);
    mails
        .for_each_concurrent(concurrency, |(mail, queued_at)| {
            deliver(&*mailer, &config, &counters, mail, queued_at)
        })
        .await;
}

async fn deliver(
    mailer: &dyn Mailer,
    config: &QueueConfig,
    counters: &Counters,
    mail: Mail,
    queued_at: Instant,
) {
    let mut backoff = config.initial_backoff;
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        match mailer.send(mail.clone()).await {
            Ok(()) => {
                counters.sent.fetch_add(1, Ordering::Relaxed);
                if counters.outage.swap(false, Ordering::Relaxed) {
                    tracing::info!("mail server available again; sending queued mail");
                }
                if attempts > 1 {
                    tracing::info!(subject = %mail.subject, attempts, "mail sent after retrying");
                }
                return;
            }
            Err(e) if e.is_retryable() && queued_at.elapsed() >= config.max_age => {
                let dropped = counters.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                counters.expired.fetch_add(1, Ordering::Relaxed);
                tracing::error!(
                    subject = %mail.subject,
                    to = ?mail.to,
                    cc = ?mail.cc,
                    attempts,
                    error = %e,
                    dropped_total = dropped,
                    "mail dropped: still failing after {:?} (the queue's max age)",
                    config.max_age
                );
                return;
            }
            Err(e) if e.is_retryable() => {
                counters.retries.fetch_add(1, Ordering::Relaxed);
                if !counters.outage.swap(true, Ordering::Relaxed) {
                    tracing::warn!(error = %e, "cannot send mail; retrying with backoff until it works");
                } else {
                    tracing::debug!(error = %e, attempts, ?backoff, "mail retry failed");
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(config.max_backoff);
            }
            Err(e) => {
                counters.failed.fetch_add(1, Ordering::Relaxed);
                tracing::error!(subject = %mail.subject, to = ?mail.to, error = %e, "mail not sent and not retried");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;
    use tokio::sync::Notify;

    use super::*;
    use crate::mailer::MailError;

    /// Fails while `down` is set, records what it sent.
    #[derive(Default)]
    struct FlakyMailer {
        down: AtomicBool,
        attempts: AtomicU64,
        sent: Mutex<Vec<String>>,
        delivered: Notify,
        attempted: Notify,
    }

    #[async_trait]
    impl Mailer for FlakyMailer {
        async fn send(&self, mail: Mail) -> Result<(), MailError> {
            self.attempts.fetch_add(1, Ordering::SeqCst);
            self.attempted.notify_one();
            if self.down.load(Ordering::SeqCst) {
                return Err(MailError::Unavailable("connection refused".into()));
            }
            if mail.subject == "stuck" {
                return Err(MailError::Unavailable("452 mailbox full (test)".into()));
            }
            if mail.subject == "permanent" {
                return Err(MailError::Rejected("550 no such user".into()));
            }
            self.sent.lock().unwrap().push(mail.subject);
            self.delivered.notify_one();
            Ok(())
        }
    }

    fn mail(subject: &str) -> Mail {
        Mail {
            subject: subject.into(),
            body: String::new(),
            from: "hawkeye@localhost".into(),
            to: vec!["oncall@example.com".into()],
            cc: vec![],
            bcc: vec![],
            message_id: None,
            date: None,
        }
    }

    fn fast() -> QueueConfig {
        QueueConfig {
            capacity: 2,
            concurrency: 1,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(5),
            max_age: DEFAULT_MAX_AGE,
        }
    }

    #[tokio::test]
    async fn retries_until_the_mailer_works_again() {
        let mailer = Arc::new(FlakyMailer::default());
        mailer.down.store(true, Ordering::SeqCst);
        let queue = MailQueue::start(mailer.clone(), fast());
        assert!(queue.sender().send(mail("alert")));
        // Wait until it has failed a few times, then bring the server back.
        while mailer.attempts.load(Ordering::SeqCst) < 3 {
            mailer.attempted.notified().await;
        }
        mailer.down.store(false, Ordering::SeqCst);
        mailer.delivered.notified().await;
        assert_eq!(*mailer.sent.lock().unwrap(), ["alert"]);
        let stats = queue.shutdown(Duration::from_secs(5)).await;
        assert_eq!(stats.sent, 1);
        assert!(stats.retries >= 3, "{stats:?}");
    }

    #[tokio::test]
    async fn a_full_queue_drops_and_counts() {
        let mailer = Arc::new(FlakyMailer::default());
        mailer.down.store(true, Ordering::SeqCst);
        let queue = MailQueue::start(mailer.clone(), fast());
        let sender = queue.sender();
        // Capacity 2 plus one mail in flight at most: of 10, some must drop.
        let accepted = (0..10)
            .filter(|i| sender.send(mail(&format!("m{i}"))))
            .count();
        assert!(accepted <= 3, "accepted {accepted}");
        assert_eq!(queue.stats().dropped, 10 - accepted as u64);
        mailer.down.store(false, Ordering::SeqCst);
        let stats = queue.shutdown(Duration::from_secs(5)).await;
        assert_eq!(
            stats.sent, accepted as u64,
            "queued mail is sent at shutdown"
        );
    }

    #[tokio::test]
    async fn a_mail_that_keeps_failing_is_dropped_after_max_age() {
        assert_eq!(
            QueueConfig::default().max_age,
            Duration::from_secs(24 * 3600)
        );
        // "stuck" fails with a temporary error for ever (a 4xx for one
        // recipient); with one sending slot it used to block "fine" for
        // ever. Max age 0: given up after the first failure.
        let mailer = Arc::new(FlakyMailer::default());
        let config = QueueConfig {
            max_age: Duration::ZERO,
            ..fast()
        };
        let queue = MailQueue::start(mailer.clone(), config);
        assert!(queue.sender().send(mail("stuck")));
        assert!(queue.sender().send(mail("fine")));
        while mailer.sent.lock().unwrap().is_empty() {
            mailer.delivered.notified().await;
        }
        assert_eq!(*mailer.sent.lock().unwrap(), ["fine"]);
        let stats = queue.shutdown(Duration::from_secs(5)).await;
        assert_eq!((stats.sent, stats.dropped, stats.expired), (1, 1, 1));
        assert_eq!(stats.retries, 0);
    }

    #[tokio::test]
    async fn permanent_failures_are_not_retried() {
        let mailer = Arc::new(FlakyMailer::default());
        let queue = MailQueue::start(mailer.clone(), fast());
        assert!(queue.sender().send(mail("permanent")));
        assert!(queue.sender().send(mail("fine")));
        let stats = queue.shutdown(Duration::from_secs(5)).await;
        assert_eq!(stats.failed, 1);
        assert_eq!(stats.sent, 1);
        assert_eq!(mailer.attempts.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn shutdown_gives_up_after_the_grace_period() {
        let mailer = Arc::new(FlakyMailer::default());
        mailer.down.store(true, Ordering::SeqCst);
        let queue = MailQueue::start(mailer.clone(), fast());
        let sender = queue.sender();
        assert!(sender.send(mail("never")));
        let stats = queue.shutdown(Duration::from_millis(20)).await;
        assert_eq!(stats.sent, 0);
        assert!(
            !sender.send(mail("after shutdown")),
            "a closed queue refuses mail"
        );
    }
}

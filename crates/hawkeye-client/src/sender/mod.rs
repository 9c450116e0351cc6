//! The background task of a [`Client`](crate::Client): it takes events off
//! the queue, merges them (`Pending`), and every `flush_interval` writes
//! them to the server as JSON-RPC 2.0 `metric.send` *requests*, each with an
//! id and at most `max_message_bytes` long. The contract, with every bound
//! and counter: docs/client.md.
//!
//! Every request is confirmed on its own: the server answers each one with
//! `{"accepted": n, "rejected": [...]}` (or an error when it accepted
//! nothing), and answers every line it has read before it closes, even on
//! shutdown. An answered request is done: lines it rejected are counted as
//! dropped with their reason (`dropped_rejected`), never sent again.
//! Requests not answered are kept (up to `max_unconfirmed_bytes`) and written
//! again on the next connection when the server goes away; since the server
//! either took a whole request (and answered it) or none of it, a restart
//! neither loses nor double-counts anything. (A server that crashes after
//! taking a request and before its answer reaches the socket would count it
//! twice: delivery is at least once across crashes, exactly once across
//! clean restarts.)
//!
//! A request the server refuses as longer than its line limit (-32004, after
//! which it closes the connection) is dropped and counted
//! (`dropped_too_large`) rather than sent again for ever.
//!
//! While the server is unreachable events keep being merged (counters of a
//! known series cost nothing more; new series, timings and set members are
//! bounded by `max_pending`), and connecting is retried with exponential
//! backoff between `min_backoff` and `max_backoff`. A write that makes no
//! progress for `write_timeout` (a server that stopped reading) drops the
//! connection; answers are read while writing, so a long resend cannot
//! deadlock with a server blocked on writing its answers.
//!
//! The parts: `outbox` (what is unconfirmed, what to resend), `requests`
//! (pending events as requests), `settle` (what an answer means for the
//! events), `link` (the connection and its backoff); this file is the task
//! that drives them.

mod backoff;
mod link;
mod outbox;
mod requests;
mod settle;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use hawkeye_protocol::jsonrpc::{code, RpcError};
use hawkeye_protocol::rpc_call::decode_reply;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tokio::time::MissedTickBehavior;

use self::link::{Answer, Link};
use self::outbox::{Message, Outbox};
use crate::config::ClientConfig;
use crate::counters::Counters;
use crate::endpoint::Endpoint;
use crate::error::FlushError;
use crate::pending::Pending;
use crate::sample::Sample;

/// Samples taken off the queue at once.
const RECV_BATCH: usize = 1024;
/// Held entries that trigger a write before the next tick.
const WRITE_AT_ENTRIES: usize = 10_000;

type Waiter = oneshot::Sender<Result<(), FlushError>>;

pub(crate) enum Control {
    Flush(Waiter),
    Shutdown(Waiter),
}

struct Sender {
    config: ClientConfig,
    counters: Arc<Counters>,
    pending: Pending,
    link: Link,
    outbox: Outbox,
    /// Flush callers, each waiting for every request up to an id.
    waiters: Vec<(u64, Waiter)>,
}

pub(crate) async fn run(
    config: ClientConfig,
    endpoint: Endpoint,
    mut data: mpsc::Receiver<Sample>,
    mut control: mpsc::UnboundedReceiver<Control>,
    counters: Arc<Counters>,
) {
    let mut tick = tokio::time::interval(config.flush_interval);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut sender = Sender::new(config, endpoint, counters);
    let mut buf = Vec::with_capacity(RECV_BATCH);
    loop {
        // Control, the tick and the server's answers come first so that a
        // busy queue cannot starve them.
        tokio::select! {
            biased;
            c = control.recv() => match c {
                Some(Control::Flush(reply)) => {
                    // What was recorded before the flush, not what keeps
                    // arriving while it runs (that would never end).
                    let queued = data.len();
                    sender.take_queued(&mut data, queued);
                    sender.flush(reply).await;
                }
                Some(Control::Shutdown(reply)) => {
                    data.close();
                    sender.take_queued(&mut data, usize::MAX);
                    let _ = reply.send(sender.finish().await);
                    return;
                }
                None => {
                    // Every handle is gone.
                    data.close();
                    sender.take_queued(&mut data, usize::MAX);
                    let _ = sender.finish().await;
                    return;
                }
            },
            _ = tick.tick() => {
                sender.on_tick().await;
                sender.after_disconnect().await;
            }
            line = sender.link.read() => {
                sender.on_answer(line);
                sender.after_disconnect().await;
            }
            n = data.recv_many(&mut buf, RECV_BATCH) => {
                if n == 0 {
                    let _ = sender.finish().await;
                    return;
                }
                for sample in buf.drain(..) {
                    sender.add(sample);
                }
                if sender.pending.entries() >= WRITE_AT_ENTRIES {
                    sender.write_pending(false).await;
                    sender.after_disconnect().await;
                }
            }
        }
    }
}

impl Sender {
    fn new(config: ClientConfig, endpoint: Endpoint, counters: Arc<Counters>) -> Sender {
        Sender {
            link: Link::new(endpoint, &config, Arc::clone(&counters)),
            outbox: Outbox::new(config.max_unconfirmed_bytes),
            config,
            counters,
            pending: Pending::default(),
            waiters: Vec::new(),
        }
    }

    fn add(&mut self, sample: Sample) {
        let dropped = self.pending.add(sample, self.config.max_pending);
        if dropped > 0 {
            self.counters
                .dropped_unreachable
                .fetch_add(dropped, Ordering::Relaxed);
        }
    }

    /// Merges at most `max` events already in the queue.
    fn take_queued(&mut self, data: &mut mpsc::Receiver<Sample>, max: usize) {
        for _ in 0..max {
            match data.try_recv() {
                Ok(sample) => self.add(sample),
                Err(_) => break,
            }
        }
    }

    async fn on_tick(&mut self) {
        if !self.link.is_up() && !self.outbox.is_empty() {
            self.connect(false).await;
        }
        self.write_pending(false).await;
    }

    async fn flush(&mut self, reply: Waiter) {
        if self.pending.is_empty() && self.outbox.is_empty() {
            let _ = reply.send(Ok(()));
            return;
        }
        self.connect(true).await;
        self.write_pending(true).await;
        // A stale connection (the server restarted) is found by writing:
        // one fresh attempt, which also writes everything unconfirmed again.
        self.connect(true).await;
        if !self.link.is_up() {
            let _ = reply.send(Err(self.link.disconnected_error()));
        } else if self.outbox.is_empty() {
            let _ = reply.send(Ok(()));
        } else {
            self.waiters.push((self.outbox.last_id(), reply));
        }
    }

    /// After the connection dropped: flush callers waiting for a
    /// confirmation get one fresh connection attempt before they fail.
    async fn after_disconnect(&mut self) {
        if !self.link.is_up() && !self.waiters.is_empty() {
            self.connect(true).await;
            if !self.link.is_up() {
                let error = self.link.disconnected_error();
                self.fail_waiters(error);
            }
        }
    }

    /// Sends what is left and waits for its confirmation, within the
    /// shutdown timeout; what could not be confirmed is counted as dropped.
    async fn finish(&mut self) -> Result<(), FlushError> {
        let timeout = self.config.shutdown_timeout;
        let result = match tokio::time::timeout(timeout, self.finish_inner()).await {
            Ok(r) => r,
            Err(_) => Err(FlushError::Timeout(timeout)),
        };
        let lost = self.pending.events() + self.outbox.events();
        if lost > 0 {
            self.counters
                .dropped_unreachable
                .fetch_add(lost, Ordering::Relaxed);
            tracing::warn!(
                events = lost,
                "hawkeye client stopped before the server confirmed these events"
            );
        }
        self.fail_waiters(FlushError::Closed);
        result
    }

    async fn finish_inner(&mut self) -> Result<(), FlushError> {
        if self.pending.is_empty() && self.outbox.is_empty() {
            return Ok(());
        }
        self.connect(true).await;
        self.write_pending(true).await;
        if !self.pending.is_empty() {
            // Could not connect: nothing was written.
            return Err(self.link.disconnected_error());
        }
        let mut reconnected = false;
        while !self.outbox.is_empty() {
            if !self.link.is_up() && !std::mem::replace(&mut reconnected, true) {
                self.connect(true).await;
            }
            if !self.link.is_up() {
                return Err(self.link.disconnected_error());
            }
            let line = self.link.read().await;
            self.on_answer(line);
        }
        Ok(())
    }

    /// Writes the held events (connecting first if needed; `force` ignores
    /// the backoff).
    async fn write_pending(&mut self, force: bool) {
        if self.pending.is_empty() {
            return;
        }
        self.connect(force).await;
        if !self.link.is_up() {
            return;
        }
        let first_new = self.outbox.last_id() + 1;
        let outbox = &mut self.outbox;
        let (messages, lines) = requests::render(
            &mut self.pending,
            || outbox.take_id(),
            self.config.max_message_bytes,
        );
        self.counters
            .lines_written
            .fetch_add(lines, Ordering::Relaxed);
        for m in messages {
            self.keep(m);
        }
        // Dropping the oldest for the bound may have dropped some of the
        // new ones too (a single render larger than the bound).
        let bytes = self.outbox.bytes_from(first_new);
        self.write(&bytes).await;
    }

    /// Connects if there is no connection (within the backoff unless
    /// `force`), and writes everything the previous connection did not
    /// answer again.
    async fn connect(&mut self, force: bool) {
        if !self.link.open(force).await {
            return;
        }
        let resend = self.outbox.len();
        if resend > 0 {
            let bytes = self.outbox.bytes_from(0);
            self.write(&bytes).await;
            if !self.link.is_up() {
                return;
            }
        }
        self.link.established(resend);
    }

    /// Writes to the connection and handles the answers read meanwhile.
    async fn write(&mut self, bytes: &[u8]) {
        let (answers, failure) = self.link.write(bytes).await;
        for answer in answers {
            self.on_answer(answer);
        }
        if let Some(reason) = failure {
            if self.link.is_up() {
                tracing::warn!(reason = %reason, "hawkeye client: dropping the connection");
                self.link.down(&reason);
            }
        }
    }

    fn keep(&mut self, message: Message) {
        for old in self.outbox.push(message) {
            self.counters
                .dropped_unreachable
                .fetch_add(old.events, Ordering::Relaxed);
            tracing::warn!(
                events = old.events,
                "hawkeye client dropped unconfirmed events: the server is not answering"
            );
        }
        self.wake_waiters();
    }

    /// A line from the server.
    fn on_answer(&mut self, answer: Answer) {
        let line = match answer {
            Ok(Some(line)) => line,
            Ok(None) => return self.link.down("the server closed the connection"),
            Err(e) => return self.link.down(&e.to_string()),
        };
        let reply = match decode_reply(&line) {
            Ok(reply) => reply,
            Err(e) => {
                tracing::warn!(error = %e, "hawkeye client: unreadable answer from the server");
                return;
            }
        };
        match (reply.id, reply.outcome) {
            (Some(id), outcome) => self.answered(id, outcome),
            (None, Err(error)) if error.code == code::LINE_TOO_LONG => self.refused_too_long(),
            (None, Err(error)) => tracing::warn!(%error, "hawkeye server reported an error"),
            (None, Ok(_)) => {}
        }
    }

    /// The server answered request `id`: it is done, whatever the answer.
    fn answered(&mut self, id: u64, outcome: Result<Value, RpcError>) {
        let Some(m) = self.outbox.answered(id) else {
            return;
        };
        let settled = settle::settle(&m, outcome);
        let c = &self.counters;
        c.batches_confirmed.fetch_add(1, Ordering::Relaxed);
        c.delivered.fetch_add(settled.delivered, Ordering::Relaxed);
        if let Some(reason) = settled.reason {
            let events = settled.rejected;
            c.dropped_rejected.fetch_add(events, Ordering::Relaxed);
            tracing::warn!(events, reason = %reason, "hawkeye server rejected metric lines; their events are dropped");
            if let Ok(mut last) = c.last_rejection.lock() {
                *last = Some(reason);
            }
        }
        self.wake_waiters();
    }

    /// -32004: the oldest request not answered was longer than the server
    /// reads. The server closes the connection; the others go again.
    fn refused_too_long(&mut self) {
        if let Some(m) = self.outbox.refuse_oldest() {
            self.counters
                .dropped_too_large
                .fetch_add(m.events, Ordering::Relaxed);
            tracing::warn!(
                events = m.events,
                bytes = m.bytes.len(),
                "hawkeye server refused a request as too long (lower max_message_bytes?); its events are dropped"
            );
            self.wake_waiters();
        }
    }

    /// Answers the flush callers whose requests have all been answered.
    fn wake_waiters(&mut self) {
        if self.waiters.is_empty() {
            return;
        }
        let outbox = &self.outbox;
        let (done, waiting): (Vec<_>, Vec<_>) = self
            .waiters
            .drain(..)
            .partition(|(id, _)| outbox.settled_through(*id));
        self.waiters = waiting;
        for (_, reply) in done {
            let _ = reply.send(Ok(()));
        }
    }

    fn fail_waiters(&mut self, error: FlushError) {
        for (_, reply) in self.waiters.drain(..) {
            let _ = reply.send(Err(error.clone()));
        }
    }
}

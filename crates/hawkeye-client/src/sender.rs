//! The background task of a [`Client`](crate::Client): it takes events off
//! the queue, merges them ([`Pending`]), and every `flush_interval` writes
//! them to the server as JSON-RPC 2.0 `metric.send` *requests*, each with an
//! id and at most `max_message_bytes` long.
//!
//! Every request is confirmed on its own: the server answers each one with
//! `{"accepted": n, "rejected": [...]}` (or an error when it accepted
//! nothing), and answers every line it has read before it closes, even on
//! shutdown. An answered request is done: lines it rejected are counted as
//! dropped with their reason (`dropped_rejected`), never sent again. Requests
//! not answered are kept (up to `max_unconfirmed_bytes`) and written again on
//! the next connection when the server goes away; since the server either
//! took a whole request (and answered it) or none of it, a restart neither
//! loses nor double-counts anything. (A server that crashes after taking a
//! request and before its answer reaches the socket would count it twice:
//! delivery is at least once across crashes, exactly once across clean
//! restarts.)
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

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use hawkeye_protocol::jsonrpc::{code, method, Response, SendResult};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, MissedTickBehavior};

use crate::aggregate::{Pending, Sample};
use crate::client::Counters;
use crate::config::ClientConfig;
use crate::error::FlushError;

/// Samples taken off the queue at once.
const RECV_BATCH: usize = 1024;
/// Held entries that trigger a write before the next tick.
const WRITE_AT_ENTRIES: usize = 10_000;
/// The smallest `max_message_bytes` honoured.
const MIN_MESSAGE_BYTES: usize = 1024;

type Reply = oneshot::Sender<Result<(), FlushError>>;

pub(crate) enum Control {
    Flush(Reply),
    Shutdown(Reply),
}

struct Connection {
    lines: Lines<BufReader<OwnedReadHalf>>,
    writer: OwnedWriteHalf,
}

/// One `metric.send` request, kept until the server answers it.
struct Message {
    id: u64,
    /// The whole request line, newline included.
    bytes: Vec<u8>,
    /// Events carried by each metric line, by index in the request.
    line_events: Vec<u64>,
    events: u64,
}

struct Sender {
    config: ClientConfig,
    counters: Arc<Counters>,
    pending: Pending,
    conn: Option<Connection>,
    /// Requests written (or to be written) and not answered yet, by id.
    unconfirmed: VecDeque<Message>,
    unconfirmed_bytes: usize,
    next_id: u64,
    /// Flush callers, each waiting for every request up to an id.
    waiters: Vec<(u64, Reply)>,
    backoff: Duration,
    next_attempt: Instant,
    last_error: String,
    /// Whether the outage has been logged (it is logged once).
    reported_down: bool,
}

pub(crate) async fn run(
    config: ClientConfig,
    mut data: mpsc::Receiver<Sample>,
    mut control: mpsc::UnboundedReceiver<Control>,
    counters: Arc<Counters>,
) {
    let mut tick = tokio::time::interval(config.flush_interval);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut sender = Sender::new(config, counters);
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
            line = read_line(&mut sender.conn) => {
                sender.on_line(line);
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

async fn read_line(conn: &mut Option<Connection>) -> io::Result<Option<String>> {
    match conn {
        Some(c) => c.lines.next_line().await,
        None => std::future::pending().await,
    }
}

/// `now + d`, or far in the future when that does not fit.
fn later(d: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(d)
        .unwrap_or_else(|| now + Duration::from_secs(365 * 24 * 3600))
}

impl Sender {
    fn new(config: ClientConfig, counters: Arc<Counters>) -> Sender {
        Sender {
            backoff: config.min_backoff,
            config,
            counters,
            pending: Pending::default(),
            conn: None,
            unconfirmed: VecDeque::new(),
            unconfirmed_bytes: 0,
            next_id: 1,
            waiters: Vec::new(),
            next_attempt: Instant::now(),
            last_error: String::new(),
            reported_down: false,
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
        if self.conn.is_none() && !self.unconfirmed.is_empty() {
            self.connect(false).await;
        }
        self.write_pending(false).await;
    }

    async fn flush(&mut self, reply: Reply) {
        if self.pending.is_empty() && self.unconfirmed.is_empty() {
            let _ = reply.send(Ok(()));
            return;
        }
        if self.conn.is_none() {
            self.connect(true).await;
        }
        self.write_pending(true).await;
        if self.conn.is_none() {
            // The connection was stale (the server restarted): one fresh
            // attempt, which also writes everything unconfirmed again.
            self.connect(true).await;
        }
        if self.conn.is_none() {
            let _ = reply.send(Err(self.disconnected_error()));
        } else if self.unconfirmed.is_empty() {
            let _ = reply.send(Ok(()));
        } else {
            self.waiters.push((self.next_id - 1, reply));
        }
    }

    /// After the connection dropped: flush callers waiting for a
    /// confirmation get one fresh connection attempt before they fail.
    async fn after_disconnect(&mut self) {
        if self.conn.is_none() && !self.waiters.is_empty() {
            self.connect(true).await;
            if self.conn.is_none() {
                let error = self.disconnected_error();
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
        let lost = self.pending.events() + self.unconfirmed.iter().map(|m| m.events).sum::<u64>();
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
        self.counters.connected.store(false, Ordering::Relaxed);
        result
    }

    async fn finish_inner(&mut self) -> Result<(), FlushError> {
        if self.pending.is_empty() && self.unconfirmed.is_empty() {
            return Ok(());
        }
        if self.conn.is_none() {
            self.connect(true).await;
        }
        self.write_pending(true).await;
        if !self.pending.is_empty() {
            // Could not connect: nothing was written.
            return Err(self.disconnected_error());
        }
        let mut reconnected = false;
        while !self.unconfirmed.is_empty() {
            if self.conn.is_none() && !std::mem::replace(&mut reconnected, true) {
                self.connect(true).await;
            }
            let Some(conn) = self.conn.as_mut() else {
                return Err(self.disconnected_error());
            };
            let line = conn.lines.next_line().await;
            self.on_line(line);
        }
        Ok(())
    }

    /// Writes the held events (connecting first if needed; `force` ignores
    /// the backoff).
    async fn write_pending(&mut self, force: bool) {
        if self.pending.is_empty() {
            return;
        }
        if self.conn.is_none() {
            self.connect(force).await;
            if self.conn.is_none() {
                return;
            }
        }
        let first_new = self.unconfirmed.len();
        self.render();
        // Dropping the oldest for the bound may have removed some of the
        // new ones too (a single render larger than the bound).
        let first_new = first_new.min(self.unconfirmed.len());
        let mut bytes = Vec::new();
        for m in self.unconfirmed.iter().skip(first_new) {
            bytes.extend_from_slice(&m.bytes);
        }
        self.write(&bytes).await;
    }

    /// Turns the held events into `metric.send` requests of at most
    /// `max_message_bytes` (a longer line goes alone) and keeps them.
    fn render(&mut self) {
        let max = self.config.max_message_bytes.max(MIN_MESSAGE_BYTES);
        let mut messages: Vec<Message> = Vec::new();
        let mut current: Option<Message> = None;
        let mut encoded = Vec::with_capacity(256);
        let mut lines = 0u64;
        let next_id = &mut self.next_id;
        let close = |m: &mut Message| m.bytes.extend_from_slice(b"]}\n");
        self.pending.drain_lines(|line, events| {
            encoded.clear();
            // Serializing a &str into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut encoded, line);
            if let Some(m) = current.as_mut() {
                if m.bytes.len() + 1 + encoded.len() + 3 > max {
                    close(m);
                    messages.extend(current.take());
                }
            }
            let m = current.get_or_insert_with(|| {
                let id = *next_id;
                *next_id += 1;
                let mut bytes = Vec::with_capacity(max.min(64 * 1024));
                bytes.extend_from_slice(
                    format!(
                        "{{\"jsonrpc\":\"2.0\",\"id\":{id},\"method\":\"{}\",\"params\":[",
                        method::SEND
                    )
                    .as_bytes(),
                );
                Message {
                    id,
                    bytes,
                    line_events: Vec::new(),
                    events: 0,
                }
            });
            if !m.line_events.is_empty() {
                m.bytes.push(b',');
            }
            m.bytes.extend_from_slice(&encoded);
            m.line_events.push(events);
            m.events += events;
            lines += 1;
        });
        if let Some(mut m) = current {
            close(&mut m);
            messages.push(m);
        }
        self.counters
            .lines_written
            .fetch_add(lines, Ordering::Relaxed);
        for m in messages {
            self.keep_unconfirmed(m);
        }
    }

    fn keep_unconfirmed(&mut self, message: Message) {
        self.unconfirmed_bytes += message.bytes.len();
        self.unconfirmed.push_back(message);
        while self.unconfirmed_bytes > self.config.max_unconfirmed_bytes
            && self.unconfirmed.len() > 1
        {
            if let Some(old) = self.unconfirmed.pop_front() {
                self.unconfirmed_bytes -= old.bytes.len();
                self.counters
                    .dropped_unreachable
                    .fetch_add(old.events, Ordering::Relaxed);
                tracing::warn!(
                    events = old.events,
                    "hawkeye client dropped unconfirmed events: the server is not answering"
                );
            }
        }
        self.wake_waiters();
    }

    /// Writes `bytes` to the connection, reading (and handling) the
    /// server's answers meanwhile. No progress for `write_timeout`, or an
    /// error, drops the connection.
    async fn write(&mut self, bytes: &[u8]) {
        let mut written = 0;
        let mut deadline = later(self.config.write_timeout);
        let mut answers = Vec::new();
        let failure = loop {
            let Some(conn) = self.conn.as_mut() else {
                break None;
            };
            if written == bytes.len() {
                break None;
            }
            tokio::select! {
                r = conn.writer.write(&bytes[written..]) => match r {
                    Ok(n) if n > 0 => {
                        written += n;
                        deadline = later(self.config.write_timeout);
                    }
                    other => {
                        // The server closed its end (a restart). The
                        // answers it wrote before closing are still to be
                        // read: a request it answered must not go again.
                        let reason = match other {
                            Err(e) => e.to_string(),
                            _ => "the connection accepts no more data".to_string(),
                        };
                        let drain = async {
                            loop {
                                let line = conn.lines.next_line().await;
                                let end = !matches!(line, Ok(Some(_)));
                                answers.push(line);
                                if end {
                                    break;
                                }
                            }
                        };
                        if tokio::time::timeout(self.config.write_timeout, drain).await.is_err() {
                            break Some(reason);
                        }
                        break None;
                    }
                },
                line = conn.lines.next_line() => {
                    let end = !matches!(line, Ok(Some(_)));
                    answers.push(line);
                    if end {
                        break None;
                    }
                }
                _ = tokio::time::sleep_until(deadline) => {
                    break Some(format!(
                        "the server read nothing for {:?} (write_timeout)",
                        self.config.write_timeout
                    ));
                }
            }
        };
        for line in answers {
            self.on_line(line);
        }
        if let Some(reason) = failure {
            if self.conn.is_some() {
                tracing::warn!(reason = %reason, "hawkeye client: dropping the connection");
                self.disconnected(&reason);
            }
        }
    }

    async fn connect(&mut self, force: bool) {
        if !force && Instant::now() < self.next_attempt {
            return;
        }
        match UnixStream::connect(&self.config.socket_path).await {
            Ok(stream) => {
                let (read, writer) = stream.into_split();
                self.conn = Some(Connection {
                    lines: BufReader::new(read).lines(),
                    writer,
                });
                self.counters.connected.store(true, Ordering::Relaxed);
                // Everything the previous connection did not answer goes again.
                let resend = self.unconfirmed.len();
                if resend > 0 {
                    let mut bytes = Vec::with_capacity(self.unconfirmed_bytes);
                    for m in &self.unconfirmed {
                        bytes.extend_from_slice(&m.bytes);
                    }
                    self.write(&bytes).await;
                    if self.conn.is_none() {
                        return;
                    }
                }
                self.backoff = self.config.min_backoff;
                self.counters.connects.fetch_add(1, Ordering::Relaxed);
                if std::mem::take(&mut self.reported_down) {
                    tracing::info!(socket = %self.config.socket_path.display(), resent = resend, "hawkeye client reconnected");
                } else {
                    tracing::debug!(socket = %self.config.socket_path.display(), "hawkeye client connected");
                }
            }
            Err(e) => self.connect_failed(&e.to_string()),
        }
    }

    fn connect_failed(&mut self, reason: &str) {
        self.last_error = reason.to_string();
        self.next_attempt = later(self.backoff);
        self.backoff = self.backoff.saturating_mul(2).min(self.config.max_backoff);
        if !self.reported_down {
            self.reported_down = true;
            tracing::warn!(
                socket = %self.config.socket_path.display(),
                error = reason,
                "hawkeye server unreachable; events are kept and sent when it is back"
            );
        }
    }

    /// The connection is gone: the unconfirmed requests wait for the next
    /// connection (see `after_disconnect` for flush callers).
    fn disconnected(&mut self, reason: &str) {
        self.conn = None;
        self.counters.connected.store(false, Ordering::Relaxed);
        self.connect_failed(reason);
    }

    fn disconnected_error(&self) -> FlushError {
        FlushError::Disconnected {
            path: self.config.socket_path.clone(),
            reason: self.last_error.clone(),
        }
    }

    fn fail_waiters(&mut self, error: FlushError) {
        for (_, reply) in self.waiters.drain(..) {
            let _ = reply.send(Err(error.clone()));
        }
    }

    /// An answer from the server.
    fn on_line(&mut self, line: io::Result<Option<String>>) {
        let line = match line {
            Ok(Some(line)) => line,
            Ok(None) => return self.disconnected("the server closed the connection"),
            Err(e) => return self.disconnected(&e.to_string()),
        };
        let response: Response = match serde_json::from_str(&line) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "hawkeye client: unreadable answer from the server");
                return;
            }
        };
        let error = response.error.filter(|e| !e.is_null());
        match response.id.as_u64() {
            Some(id) => self.answered(id, response.result, error),
            None => {
                let code = error
                    .as_ref()
                    .and_then(|e| e.get("code"))
                    .and_then(Value::as_i64);
                if code == Some(code::LINE_TOO_LONG) {
                    // Answers come in order: the request the server was
                    // reading is the oldest one not answered. The server
                    // closes the connection; the others go again.
                    if let Some(m) = self.unconfirmed.pop_front() {
                        self.unconfirmed_bytes -= m.bytes.len();
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
                } else if let Some(error) = error {
                    tracing::warn!(%error, "hawkeye server reported an error");
                }
            }
        }
    }

    /// The server answered request `id`: it is done, whatever the answer.
    fn answered(&mut self, id: u64, result: Option<Value>, error: Option<Value>) {
        let Some(pos) = self.unconfirmed.iter().position(|m| m.id == id) else {
            return;
        };
        let Some(m) = self.unconfirmed.remove(pos) else {
            return;
        };
        self.unconfirmed_bytes -= m.bytes.len();
        self.counters
            .batches_confirmed
            .fetch_add(1, Ordering::Relaxed);
        let (events, reason) = match (error, result) {
            // An error: nothing of the request was taken.
            (Some(error), _) => {
                let message = error
                    .get("message")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .unwrap_or_else(|| error.to_string());
                (m.events, Some(message))
            }
            (None, Some(result)) => match serde_json::from_value::<SendResult>(result) {
                Ok(r) => {
                    let events = r
                        .rejected
                        .iter()
                        .filter_map(|rej| m.line_events.get(rej.index))
                        .sum();
                    (events, r.rejected.into_iter().next().map(|r| r.error))
                }
                Err(e) => {
                    tracing::warn!(error = %e, "hawkeye client: unexpected answer to metric.send");
                    (0, None)
                }
            },
            (None, None) => (0, None),
        };
        self.counters
            .delivered
            .fetch_add(m.events - events, Ordering::Relaxed);
        if let Some(reason) = reason {
            self.counters
                .dropped_rejected
                .fetch_add(events, Ordering::Relaxed);
            tracing::warn!(events, reason = %reason, "hawkeye server rejected metric lines; their events are dropped");
            if let Ok(mut last) = self.counters.last_rejection.lock() {
                *last = Some(reason);
            }
        }
        self.wake_waiters();
    }

    /// Answers the flush callers whose requests have all been answered.
    fn wake_waiters(&mut self) {
        if self.waiters.is_empty() {
            return;
        }
        let oldest = self.unconfirmed.front().map_or(u64::MAX, |m| m.id);
        let (done, waiting): (Vec<_>, Vec<_>) =
            self.waiters.drain(..).partition(|(id, _)| *id < oldest);
        self.waiters = waiting;
        for (_, reply) in done {
            let _ = reply.send(Ok(()));
        }
    }
}

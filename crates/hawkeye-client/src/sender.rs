//! The background task of a [`Client`](crate::Client): it takes events off
//! the queue, merges them ([`Pending`]), and every `flush_interval` writes
//! them to the server as JSON-RPC 2.0 `metric.send` notifications followed by
//! a `server.ping` request.
//!
//! The ping's answer confirms the write: the server handles a connection's
//! lines in order, so the answer to ping `n` proves it has read everything
//! written before it. Writes not yet confirmed are kept (up to
//! `max_unconfirmed_bytes`) and written again on the next connection when the
//! server goes away, so a server restart loses nothing the old server had not
//! read. (A server that read a write but died before answering its ping would
//! count that write twice: delivery is at least once across crashes, exactly
//! once across clean restarts.)
//!
//! While the server is unreachable events keep being merged (counters of a
//! known series cost nothing more; new series, timings and set members are
//! bounded by `max_pending`), and connecting is retried with exponential
//! backoff between `min_backoff` and `max_backoff`.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use hawkeye_protocol::jsonrpc::{method, Response};
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
/// A `metric.send` notification is closed after this many bytes of lines
/// (the server refuses lines longer than 1 MiB).
const MESSAGE_BYTES: usize = 256 * 1024;

type Reply = oneshot::Sender<Result<(), FlushError>>;

pub(crate) enum Control {
    Flush(Reply),
    Shutdown(Reply),
}

struct Connection {
    lines: Lines<BufReader<OwnedReadHalf>>,
    writer: OwnedWriteHalf,
}

/// One write: notifications and the ping that confirms them.
struct Write {
    seq: u64,
    bytes: Vec<u8>,
    events: u64,
}

struct Sender {
    config: ClientConfig,
    counters: Arc<Counters>,
    pending: Pending,
    conn: Option<Connection>,
    unconfirmed: VecDeque<Write>,
    unconfirmed_bytes: usize,
    next_seq: u64,
    /// Flush callers, each waiting for the confirmation of one write.
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
                    sender.take_queued(&mut data);
                    sender.flush(reply).await;
                }
                Some(Control::Shutdown(reply)) => {
                    data.close();
                    sender.take_queued(&mut data);
                    let _ = reply.send(sender.finish().await);
                    return;
                }
                None => {
                    // Every handle is gone.
                    data.close();
                    sender.take_queued(&mut data);
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
            next_seq: 1,
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

    /// Merges everything already in the queue.
    fn take_queued(&mut self, data: &mut mpsc::Receiver<Sample>) {
        while let Ok(sample) = data.try_recv() {
            self.add(sample);
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
        match (&self.conn, self.unconfirmed.back()) {
            (Some(_), Some(last)) => self.waiters.push((last.seq, reply)),
            (Some(_), None) => {
                let _ = reply.send(Ok(()));
            }
            (None, _) => {
                let _ = reply.send(Err(self.disconnected_error()));
            }
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
        let lost = self.pending.events() + self.unconfirmed.iter().map(|w| w.events).sum::<u64>();
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
        let write = self.render();
        self.keep_unconfirmed(write);
        let (Some(conn), Some(write)) = (self.conn.as_mut(), self.unconfirmed.back()) else {
            return;
        };
        if let Err(e) = conn.writer.write_all(&write.bytes).await {
            self.disconnected(&e.to_string());
        }
    }

    /// Turns the held events into one write.
    fn render(&mut self) -> Write {
        const OPEN: &[u8] = br#"{"jsonrpc":"2.0","method":"metric.send","params":["#;
        const CLOSE: &[u8] = b"]}\n";
        let seq = self.next_seq;
        self.next_seq += 1;
        let events = self.pending.events();
        let mut bytes = Vec::with_capacity(4096);
        let mut message_start = 0;
        let mut in_message = 0usize;
        let mut lines = 0u64;
        bytes.extend_from_slice(OPEN);
        self.pending.drain_lines(|line| {
            if in_message > 0 {
                if bytes.len() - message_start > MESSAGE_BYTES {
                    bytes.extend_from_slice(CLOSE);
                    message_start = bytes.len();
                    bytes.extend_from_slice(OPEN);
                    in_message = 0;
                } else {
                    bytes.push(b',');
                }
            }
            // Serializing a &str into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut bytes, line);
            in_message += 1;
            lines += 1;
        });
        bytes.extend_from_slice(CLOSE);
        bytes.extend_from_slice(
            format!(
                "{{\"jsonrpc\":\"2.0\",\"method\":\"{}\",\"id\":{seq}}}\n",
                method::PING
            )
            .as_bytes(),
        );
        self.counters
            .lines_written
            .fetch_add(lines, Ordering::Relaxed);
        Write { seq, bytes, events }
    }

    fn keep_unconfirmed(&mut self, write: Write) {
        self.unconfirmed_bytes += write.bytes.len();
        self.unconfirmed.push_back(write);
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
    }

    async fn connect(&mut self, force: bool) {
        if !force && Instant::now() < self.next_attempt {
            return;
        }
        match UnixStream::connect(&self.config.socket_path).await {
            Ok(stream) => {
                let (read, writer) = stream.into_split();
                let mut conn = Connection {
                    lines: BufReader::new(read).lines(),
                    writer,
                };
                // Everything not confirmed by the previous server goes again.
                for write in &self.unconfirmed {
                    if let Err(e) = conn.writer.write_all(&write.bytes).await {
                        self.connect_failed(&e.to_string());
                        return;
                    }
                }
                self.conn = Some(conn);
                self.backoff = self.config.min_backoff;
                self.counters.connects.fetch_add(1, Ordering::Relaxed);
                self.counters.connected.store(true, Ordering::Relaxed);
                if std::mem::take(&mut self.reported_down) {
                    tracing::info!(socket = %self.config.socket_path.display(), resent = self.unconfirmed.len(), "hawkeye client reconnected");
                } else {
                    tracing::debug!(socket = %self.config.socket_path.display(), "hawkeye client connected");
                }
            }
            Err(e) => self.connect_failed(&e.to_string()),
        }
    }

    fn connect_failed(&mut self, reason: &str) {
        self.last_error = reason.to_string();
        self.next_attempt = Instant::now() + self.backoff;
        self.backoff = (self.backoff * 2).min(self.config.max_backoff);
        if !self.reported_down {
            self.reported_down = true;
            tracing::warn!(
                socket = %self.config.socket_path.display(),
                error = reason,
                "hawkeye server unreachable; events are kept and sent when it is back"
            );
        }
    }

    /// The connection is gone: the unconfirmed writes wait for the next
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
        if let Some(error) = &response.error {
            tracing::warn!(%error, id = %response.id, "hawkeye server reported an error");
        }
        if let Some(seq) = response.id.as_u64() {
            self.confirm(seq);
        }
    }

    /// The server has read every write up to `seq`.
    fn confirm(&mut self, seq: u64) {
        while self.unconfirmed.front().is_some_and(|w| w.seq <= seq) {
            if let Some(w) = self.unconfirmed.pop_front() {
                self.unconfirmed_bytes -= w.bytes.len();
                self.counters
                    .batches_confirmed
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
        let (done, waiting): (Vec<_>, Vec<_>) =
            self.waiters.drain(..).partition(|(s, _)| *s <= seq);
        self.waiters = waiting;
        for (_, reply) in done {
            let _ = reply.send(Ok(()));
        }
    }
}

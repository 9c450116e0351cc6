//! The connection to the server as the background task sees it:
//! connecting within the backoff, writing while reading the answers, and
//! noticing that it is gone (logged once per outage). It knows nothing of
//! what the bytes mean.

use std::io;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::time::Instant;

use super::backoff::{later, Backoff};
use crate::config::ClientConfig;
use crate::counters::Counters;
use crate::endpoint::{Endpoint, Reader, Writer};
use crate::error::FlushError;

/// One line from the server, `Ok(None)` when it closed the connection.
pub(crate) type Answer = io::Result<Option<String>>;

struct Connection {
    lines: Lines<BufReader<Reader>>,
    writer: Writer,
}

pub(crate) struct Link {
    endpoint: Endpoint,
    conn: Option<Connection>,
    backoff: Backoff,
    write_timeout: Duration,
    /// For logs and errors.
    socket_path: PathBuf,
    last_error: String,
    /// Whether the outage has been logged (it is logged once).
    reported_down: bool,
    counters: Arc<Counters>,
}

impl Link {
    pub(crate) fn new(endpoint: Endpoint, config: &ClientConfig, counters: Arc<Counters>) -> Link {
        Link {
            endpoint,
            conn: None,
            backoff: Backoff::new(config.min_backoff, config.max_backoff, Instant::now()),
            write_timeout: config.write_timeout,
            socket_path: config.socket_path.clone(),
            last_error: String::new(),
            reported_down: false,
            counters,
        }
    }

    pub(crate) fn is_up(&self) -> bool {
        self.conn.is_some()
    }

    /// Connects when there is no connection and the backoff allows an
    /// attempt (`force`: whatever the backoff). True when a new connection
    /// was made; it counts as working once [`established`](Link::established).
    pub(crate) async fn open(&mut self, force: bool) -> bool {
        if self.conn.is_some() || (!force && !self.backoff.ready(Instant::now())) {
            return false;
        }
        match self.endpoint.connect().await {
            Ok((read, writer)) => {
                self.conn = Some(Connection {
                    lines: BufReader::new(read).lines(),
                    writer,
                });
                self.counters.connected.store(true, Ordering::Relaxed);
                true
            }
            Err(e) => {
                self.failed(&e.to_string());
                false
            }
        }
    }

    /// The new connection took what was resent on it: the backoff starts
    /// over, and the end of an outage is logged.
    pub(crate) fn established(&mut self, resent: usize) {
        self.backoff.succeeded();
        self.counters.connects.fetch_add(1, Ordering::Relaxed);
        let socket = self.socket_path.display();
        if std::mem::take(&mut self.reported_down) {
            tracing::info!(%socket, resent, "hawkeye client reconnected");
        } else {
            tracing::debug!(%socket, "hawkeye client connected");
        }
    }

    /// The next line from the server; never resolves without a connection.
    pub(crate) async fn read(&mut self) -> Answer {
        match self.conn.as_mut() {
            Some(c) => c.lines.next_line().await,
            None => std::future::pending().await,
        }
    }

    /// Writes `bytes`, reading the server's answers meanwhile (returned in
    /// order, for the caller to handle), so that a long write cannot
    /// deadlock with a server blocked on writing its answers. Returns too
    /// why the connection must be dropped, if it must: no progress for
    /// `write_timeout`, or a failed write after which the server said
    /// nothing more within it.
    pub(crate) async fn write(&mut self, bytes: &[u8]) -> (Vec<Answer>, Option<String>) {
        let mut written = 0;
        let mut deadline = later(Instant::now(), self.write_timeout);
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
                        deadline = later(Instant::now(), self.write_timeout);
                    }
                    other => {
                        let reason = match other {
                            Err(e) => e.to_string(),
                            _ => "the connection accepts no more data".to_string(),
                        };
                        break drain(conn, &mut answers, self.write_timeout, reason).await;
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
                        self.write_timeout
                    ));
                }
            }
        };
        (answers, failure)
    }

    /// The connection is gone: the next attempt waits for the backoff.
    pub(crate) fn down(&mut self, reason: &str) {
        self.conn = None;
        self.counters.connected.store(false, Ordering::Relaxed);
        self.failed(reason);
    }

    /// What a flush that could not reach the server returns.
    pub(crate) fn disconnected_error(&self) -> FlushError {
        FlushError::Disconnected {
            path: self.socket_path.clone(),
            reason: self.last_error.clone(),
        }
    }

    fn failed(&mut self, reason: &str) {
        self.last_error = reason.to_string();
        self.backoff.failed(Instant::now());
        if !self.reported_down {
            self.reported_down = true;
            tracing::warn!(
                socket = %self.socket_path.display(),
                error = reason,
                "hawkeye server unreachable; events are kept and sent when it is back"
            );
        }
    }
}

/// The server closed its end (a restart) while we wrote. The answers it
/// wrote before closing are still to be read: a request it answered must
/// not go again. `Some(reason)` when they did not end within `within`.
async fn drain(
    conn: &mut Connection,
    answers: &mut Vec<Answer>,
    within: Duration,
    reason: String,
) -> Option<String> {
    let read_all = async {
        loop {
            let line = conn.lines.next_line().await;
            let end = !matches!(line, Ok(Some(_)));
            answers.push(line);
            if end {
                break;
            }
        }
    };
    match tokio::time::timeout(within, read_all).await {
        Ok(()) => None,
        Err(_) => Some(reason),
    }
}

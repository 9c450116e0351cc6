//! Warnings for lines refused where nobody is answered (the datagram
//! socket, UDP, TCP, plain lines on the stream socket): a client there
//! cannot see its errors, so the operator must, but a client sending
//! nothing but bad lines must not flood the log. Each listener logs at
//! most one line per `HAWKEYE_REJECT_LOG_INTERVAL` (10 s), with the reason,
//! a sample of the line (at most 64 bytes, control characters escaped) and
//! how many refusals it did not log since the last line
//! (docs/protocol.md, "Refused lines").

use std::fmt::Display;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use hawkeye_protocol::line::snippet;
use tracing::warn;

/// Where lines that are never answered come from; each has its own
/// rate-limited log of refusals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Listener {
    Datagram,
    Udp,
    Tcp,
    /// A client of the (JSON-RPC) stream socket sending plain lines.
    UnixStream,
}

impl Listener {
    pub const ALL: [Listener; 4] = [
        Listener::Datagram,
        Listener::Udp,
        Listener::Tcp,
        Listener::UnixStream,
    ];

    /// As logs name it.
    pub fn name(self) -> &'static str {
        match self {
            Listener::Datagram => "datagram",
            Listener::Udp => "udp",
            Listener::Tcp => "tcp",
            Listener::UnixStream => "unix-stream",
        }
    }
}

pub(crate) struct RejectLog {
    listener: &'static str,
    interval_ms: u64,
    started: Instant,
    /// Milliseconds since `started` before which nothing more is logged.
    quiet_until: AtomicU64,
    /// Refusals not logged since the last line.
    suppressed: AtomicU64,
}

impl RejectLog {
    pub fn new(listener: &'static str, interval: Duration) -> RejectLog {
        RejectLog {
            listener,
            interval_ms: interval.as_millis().max(1) as u64,
            started: Instant::now(),
            quiet_until: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// A line refused for `reason`; `sample` is the line, or what names it.
    pub fn rejected(&self, reason: &dyn Display, sample: &str) {
        if let Some(suppressed) = self.turn(self.now_ms()) {
            warn!(
                listener = self.listener,
                reason = %reason,
                sample = ?snippet(sample),
                suppressed,
                "metric line rejected (the count of refusals not logged since the last such line is `suppressed`)"
            );
        }
    }

    /// A line that is not text.
    pub fn rejected_bytes(&self, reason: &dyn Display, line: &[u8]) {
        if self.would_log() {
            let end = line.len().min(64);
            self.rejected(reason, &String::from_utf8_lossy(&line[..end]));
        } else {
            self.suppressed.fetch_add(1, Relaxed);
        }
    }

    fn would_log(&self) -> bool {
        self.now_ms() >= self.quiet_until.load(Relaxed)
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Whether a refusal at `now_ms` is logged: `Some(refusals not logged
    /// since the last line)`, or `None` (and it is counted as not logged).
    /// Of refusals at the same moment on several threads, one is logged.
    fn turn(&self, now_ms: u64) -> Option<u64> {
        let quiet_until = self.quiet_until.load(Relaxed);
        let mine = now_ms >= quiet_until
            && self
                .quiet_until
                .compare_exchange(quiet_until, now_ms + self.interval_ms, Relaxed, Relaxed)
                .is_ok();
        if !mine {
            self.suppressed.fetch_add(1, Relaxed);
            return None;
        }
        Some(self.suppressed.swap(0, Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval_with_the_count_it_kept_quiet() {
        let log = RejectLog::new("udp", Duration::from_secs(10));
        assert_eq!(log.turn(0), Some(0), "the first refusal is logged");
        for t in [1, 500, 9_999] {
            assert_eq!(log.turn(t), None);
        }
        assert_eq!(log.turn(10_000), Some(3));
        assert_eq!(log.turn(10_001), None);
        assert_eq!(log.turn(25_000), Some(1));
        assert_eq!(log.turn(25_000), None);
    }
}

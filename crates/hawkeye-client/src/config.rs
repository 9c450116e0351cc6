//! How a [`Client`](crate::Client) is set up.

use std::path::PathBuf;
use std::time::Duration;

/// The socket path used when `HAWKEYE_SOCKET` is not set.
pub const DEFAULT_SOCKET: &str = "/tmp/hawkeye.sock";

/// Settings of a client. Build one with [`ClientConfig::new`] or
/// [`ClientConfig::from_env`] and adjust the public fields.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The server's JSON-RPC stream socket.
    pub socket_path: PathBuf,
    /// How many events may wait in the queue; past it events are dropped and
    /// counted ([`ClientStats::dropped_queue_full`](crate::ClientStats)).
    pub queue_capacity: usize,
    /// How often aggregated events are written to the server.
    pub flush_interval: Duration,
    /// How many aggregated entries (series, timing values, set members) may
    /// be held while the server is unreachable; past it new ones are dropped
    /// and counted. Increments of a series already held are always kept.
    pub max_pending: usize,
    /// Bytes written to the server but not yet confirmed that are kept to be
    /// sent again after a reconnect; past it the oldest are dropped and counted.
    pub max_unconfirmed_bytes: usize,
    /// First delay between reconnection attempts; it doubles up to `max_backoff`.
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    /// How long [`Client::shutdown`](crate::Client::shutdown) (and
    /// [`Client::shutdown_blocking`](crate::Client::shutdown_blocking)) waits
    /// for the server to confirm the last events. Dropping the last handle
    /// starts the same final send in the background but waits for nothing:
    /// a program that is about to exit should call one of the two.
    pub shutdown_timeout: Duration,
    /// How long [`Client::flush`](crate::Client::flush) waits for the
    /// server's confirmation before it returns
    /// [`FlushError::Timeout`](crate::FlushError::Timeout) (the events stay
    /// held and are still sent).
    pub flush_timeout: Duration,
    /// A write to the server that makes no progress for this long (the
    /// server stopped reading) drops the connection; what it did not confirm
    /// is sent again after reconnecting.
    pub write_timeout: Duration,
    /// The largest `metric.send` request line the client writes, in bytes
    /// (at least 1 KiB is used). Keep it below the server's `HAWKEYE_MAX_LINE_BYTES` (1 MiB by
    /// default). A single metric line longer than this is sent alone; if the
    /// server refuses it as too long (-32004) it is dropped and counted in
    /// [`ClientStats::dropped_too_large`](crate::ClientStats::dropped_too_large).
    pub max_message_bytes: usize,
    /// Prepended with a `.` to every metric name (none when empty).
    pub prefix: String,
    /// Added to every event (an event's own tag of the same key wins).
    pub default_tags: Vec<(String, String)>,
}

impl ClientConfig {
    pub fn new(socket_path: impl Into<PathBuf>) -> ClientConfig {
        ClientConfig {
            socket_path: socket_path.into(),
            queue_capacity: 100_000,
            flush_interval: Duration::from_millis(100),
            max_pending: 100_000,
            max_unconfirmed_bytes: 16 << 20,
            min_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(5),
            shutdown_timeout: Duration::from_secs(5),
            flush_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(5),
            max_message_bytes: 256 * 1024,
            prefix: String::new(),
            default_tags: Vec::new(),
        }
    }

    /// The socket from `HAWKEYE_SOCKET` (default `/tmp/hawkeye.sock`), the
    /// rest default.
    pub fn from_env() -> ClientConfig {
        let socket = std::env::var_os("HAWKEYE_SOCKET")
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET));
        ClientConfig::new(socket)
    }

    pub fn queue_capacity(mut self, capacity: usize) -> ClientConfig {
        self.queue_capacity = capacity;
        self
    }

    pub fn flush_interval(mut self, interval: Duration) -> ClientConfig {
        self.flush_interval = interval;
        self
    }

    pub fn flush_timeout(mut self, timeout: Duration) -> ClientConfig {
        self.flush_timeout = timeout;
        self
    }

    pub fn write_timeout(mut self, timeout: Duration) -> ClientConfig {
        self.write_timeout = timeout;
        self
    }

    pub fn max_message_bytes(mut self, bytes: usize) -> ClientConfig {
        self.max_message_bytes = bytes;
        self
    }

    pub fn prefix(mut self, prefix: impl Into<String>) -> ClientConfig {
        self.prefix = prefix.into();
        self
    }

    pub fn default_tag(mut self, key: impl Into<String>, value: impl Into<String>) -> ClientConfig {
        self.default_tags.push((key.into(), value.into()));
        self
    }
}

impl Default for ClientConfig {
    fn default() -> ClientConfig {
        ClientConfig::new(DEFAULT_SOCKET)
    }
}

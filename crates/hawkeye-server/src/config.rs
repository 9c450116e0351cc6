//! Server settings: defaults, the environment and their bounds. Every
//! variable, and what a client sees past each limit: README "Configuration"
//! and "Limits and bounds", docs/protocol.md.

use std::path::PathBuf;
use std::time::Duration;

use hawkeye_env::Env;
use hawkeye_protocol::{GaugeMode, Limits};

/// Everything the server needs to start, apart from its store.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// JSON-RPC stream socket (`HAWKEYE_SOCKET`).
    pub socket_path: PathBuf,
    /// statsd/DogStatsD datagram socket (`HAWKEYE_DGRAM_SOCKET`), off when `None`.
    pub dgram_socket_path: Option<PathBuf>,
    /// statsd UDP listener (`HAWKEYE_UDP_ADDR`, e.g. `127.0.0.1:8125`), off
    /// when `None`. Its lines are read as on the datagram socket.
    pub udp_addr: Option<std::net::SocketAddr>,
    /// Receive buffer asked for on the UDP socket (`HAWKEYE_UDP_RCVBUF`);
    /// the kernel grants at most `net.core.rmem_max`.
    pub udp_rcvbuf: usize,
    /// statsd TCP listener (`HAWKEYE_TCP_ADDR`), off when `None`:
    /// newline-delimited lines, nothing answered, the stream socket's
    /// connection bounds.
    pub tcp_addr: Option<std::net::SocketAddr>,
    /// HTTP listener serving `/metrics` (`HAWKEYE_HTTP_ADDR`), off when
    /// `None`; the series are only tracked for it when it is on.
    pub http_addr: Option<std::net::SocketAddr>,
    /// File mode of the socket files (`HAWKEYE_SOCKET_MODE`, octal).
    pub socket_mode: u32,
    /// How often aggregates are written to the store (`HAWKEYE_FLUSH_INTERVAL`).
    pub flush_interval: Duration,
    /// How long per-second aggregates are kept; matches the store's
    /// (`HAWKEYE_RETENTION`).
    pub retention: Duration,
    /// How long per-minute rollups are kept; matches the store's
    /// (`HAWKEYE_ROLLUP_RETENTION`, default 35 days, at least `retention`).
    /// How far back a `|T` timestamp may reach, and the longest window of
    /// `metric.query` and `metric.range`.
    pub rollup_retention: Duration,
    /// How often closed rollup hours are packed into day strings
    /// (`HAWKEYE_COMPACTION_INTERVAL`, docs/storage.md, "Compaction").
    pub compaction_interval: Duration,
    /// Distinct series accepted before new ones are refused (`HAWKEYE_MAX_SERIES`).
    pub max_series: usize,
    /// Longest request line on the stream socket (`HAWKEYE_MAX_LINE_BYTES`).
    pub max_line_bytes: usize,
    /// Bytes of request lines held across all connections, read but not yet
    /// answered (partial lines included), before the connection holding the
    /// most is closed (`HAWKEYE_MAX_PENDING_BYTES`).
    pub max_pending_bytes: usize,
    /// How long a request line may stay incomplete before its connection is
    /// closed (`HAWKEYE_LINE_TIMEOUT`).
    pub line_timeout: Duration,
    /// Unsent answers a connection may hold before the server stops reading
    /// from it until its client reads (`HAWKEYE_MAX_OUTPUT_BYTES`).
    pub max_output_bytes: usize,
    /// Most requests in one JSON-RPC batch, and most lines in one
    /// `Metric.Handle` text (`HAWKEYE_MAX_BATCH`).
    pub max_batch: usize,
    /// Tags per line and bytes per series key or set member
    /// (`HAWKEYE_MAX_TAGS`, `HAWKEYE_MAX_KEY_BYTES`), and what a signed
    /// gauge value means on the stream socket (`HAWKEYE_GAUGE_MODE`).
    pub line_limits: Limits,
    /// What a signed gauge value means on the datagram socket
    /// (`HAWKEYE_DGRAM_GAUGE_MODE`, by default `HAWKEYE_GAUGE_MODE`).
    pub dgram_gauge_mode: GaugeMode,
    /// Concurrent stream connections (`HAWKEYE_MAX_CONNECTIONS`).
    pub max_connections: usize,
    /// At the connection limit, a connection idle at least this long may be
    /// closed (the longest idle first) to admit a new client
    /// (`HAWKEYE_EVICT_IDLE_AFTER`).
    pub evict_idle_after: Duration,
    /// Aggregates held in memory while the store is unreachable, before
    /// events are refused: one unit per (series, second), plus one per set
    /// member and per sketch bucket (`HAWKEYE_MAX_BUFFERED`).
    pub max_buffered: usize,
    /// Largest datagram read whole (`HAWKEYE_DGRAM_MAX_BYTES`); a longer one
    /// is cut and counted. By default the largest the socket can carry.
    pub dgram_max_bytes: usize,
    /// How long shutdown keeps trying to write the last aggregates
    /// (`HAWKEYE_SHUTDOWN_TIMEOUT`).
    pub shutdown_timeout: Duration,
    /// Lines refused on a listener that answers nothing (datagram, UDP,
    /// TCP, plain lines on the stream socket) are logged at warn level at
    /// most once per this interval per listener, with the count not logged
    /// (`HAWKEYE_REJECT_LOG_INTERVAL`).
    pub reject_log_interval: Duration,
    /// What this server is called in the store (`HAWKEYE_SERVER_ID`): unique
    /// among the servers sharing a store, the same across restarts. `None`:
    /// the host name and the absolute socket path (docs/cluster.md, "Server
    /// ids").
    pub server_id: Option<String>,
    /// Serve Go's one-event calls answered in lockstep on a thread of
    /// their own, without tokio's tasks (`crate::lane`); every other
    /// connection, and any that stops being lockstep, is served on the
    /// runtime as before. On by default; the standalone server turns it
    /// off when `HAWKEYE_CONNECTION_THREADS` asks for several workers.
    pub lockstep_lane: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            socket_path: PathBuf::from("/tmp/hawkeye.sock"),
            dgram_socket_path: None,
            udp_addr: None,
            udp_rcvbuf: 8 << 20,
            tcp_addr: None,
            http_addr: None,
            socket_mode: 0o660,
            flush_interval: Duration::from_millis(200),
            retention: Duration::from_secs(3600),
            rollup_retention: hawkeye_store::DEFAULT_ROLLUP_RETENTION,
            compaction_interval: Duration::from_secs(60),
            max_series: 100_000,
            max_line_bytes: 1 << 20,
            max_pending_bytes: 64 << 20,
            line_timeout: Duration::from_secs(10),
            max_output_bytes: 64 << 10,
            max_batch: 1000,
            line_limits: Limits::default(),
            dgram_gauge_mode: GaugeMode::Statsd,
            max_connections: 4096,
            evict_idle_after: Duration::from_secs(1),
            max_buffered: 1_000_000,
            dgram_max_bytes: crate::datagram::largest_datagram(),
            shutdown_timeout: Duration::from_secs(10),
            server_id: None,
            reject_log_interval: Duration::from_secs(10),
            lockstep_lane: true,
        }
    }
}

/// A setting that could not be read; the message names the variable.
pub use hawkeye_env::EnvError as ConfigError;

impl ServerConfig {
    /// How lines on the datagram socket are read: the same bounds, its own
    /// gauge mode.
    pub fn dgram_line_limits(&self) -> Limits {
        Limits {
            gauge_mode: self.dgram_gauge_mode,
            ..self.line_limits
        }
    }

    /// Reads the settings from the process environment.
    pub fn from_env() -> Result<ServerConfig, ConfigError> {
        ServerConfig::from_reader(&Env::process())
    }

    pub fn from_reader(env: &Env) -> Result<ServerConfig, ConfigError> {
        let d = ServerConfig::default();
        let gauge_mode = env.parsed("HAWKEYE_GAUGE_MODE", d.line_limits.gauge_mode)?;
        let mut config = ServerConfig {
            socket_path: PathBuf::from(env.string_or("HAWKEYE_SOCKET", "/tmp/hawkeye.sock")),
            dgram_socket_path: env.get("HAWKEYE_DGRAM_SOCKET").map(PathBuf::from),
            udp_addr: env.socket_addr("HAWKEYE_UDP_ADDR")?,
            udp_rcvbuf: env.count("HAWKEYE_UDP_RCVBUF", d.udp_rcvbuf)?,
            tcp_addr: env.socket_addr("HAWKEYE_TCP_ADDR")?,
            http_addr: env.socket_addr("HAWKEYE_HTTP_ADDR")?,
            socket_mode: env.mode("HAWKEYE_SOCKET_MODE", d.socket_mode)?,
            flush_interval: env.duration("HAWKEYE_FLUSH_INTERVAL", d.flush_interval)?,
            retention: env.duration("HAWKEYE_RETENTION", d.retention)?,
            rollup_retention: Duration::ZERO,
            compaction_interval: env
                .duration("HAWKEYE_COMPACTION_INTERVAL", d.compaction_interval)?,
            max_series: env.count("HAWKEYE_MAX_SERIES", d.max_series)?,
            max_line_bytes: env.count("HAWKEYE_MAX_LINE_BYTES", d.max_line_bytes)?,
            max_pending_bytes: env.count("HAWKEYE_MAX_PENDING_BYTES", d.max_pending_bytes)?,
            line_timeout: env.duration("HAWKEYE_LINE_TIMEOUT", d.line_timeout)?,
            max_output_bytes: env.count("HAWKEYE_MAX_OUTPUT_BYTES", d.max_output_bytes)?,
            max_batch: env.count("HAWKEYE_MAX_BATCH", d.max_batch)?,
            line_limits: Limits {
                max_tags: env.count("HAWKEYE_MAX_TAGS", d.line_limits.max_tags)?,
                max_key_bytes: env.count("HAWKEYE_MAX_KEY_BYTES", d.line_limits.max_key_bytes)?,
                gauge_mode,
            },
            dgram_gauge_mode: env.parsed("HAWKEYE_DGRAM_GAUGE_MODE", gauge_mode)?,
            max_connections: env.count("HAWKEYE_MAX_CONNECTIONS", d.max_connections)?,
            evict_idle_after: env.duration("HAWKEYE_EVICT_IDLE_AFTER", d.evict_idle_after)?,
            max_buffered: env.count("HAWKEYE_MAX_BUFFERED", d.max_buffered)?,
            dgram_max_bytes: env.count("HAWKEYE_DGRAM_MAX_BYTES", d.dgram_max_bytes)?,
            shutdown_timeout: env.duration("HAWKEYE_SHUTDOWN_TIMEOUT", d.shutdown_timeout)?,
            reject_log_interval: env
                .duration("HAWKEYE_REJECT_LOG_INTERVAL", d.reject_log_interval)?,
            server_id: env.get("HAWKEYE_SERVER_ID").map(|v| v.trim().to_string()),
            lockstep_lane: d.lockstep_lane,
        };
        for (variable, value) in [
            ("HAWKEYE_FLUSH_INTERVAL", config.flush_interval),
            ("HAWKEYE_LINE_TIMEOUT", config.line_timeout),
            ("HAWKEYE_REJECT_LOG_INTERVAL", config.reject_log_interval),
            ("HAWKEYE_COMPACTION_INTERVAL", config.compaction_interval),
        ] {
            if value.is_zero() {
                return Err(ConfigError {
                    variable: variable.into(),
                    reason: "must be more than zero".into(),
                });
            }
        }
        config.rollup_retention = rollup_retention(env, config.retention)?;
        // A line the budget could never hold would be refused for ever.
        if config.max_pending_bytes < config.max_line_bytes {
            return Err(ConfigError {
                variable: "HAWKEYE_MAX_PENDING_BYTES".into(),
                reason: format!(
                    "{} is less than HAWKEYE_MAX_LINE_BYTES ({}): one longest line must fit",
                    config.max_pending_bytes, config.max_line_bytes
                ),
            });
        }
        Ok(config)
    }
}

/// `HAWKEYE_ROLLUP_RETENTION`: 35 days unless set (or the retention, when
/// that is longer); never shorter than the retention.
pub fn rollup_retention(env: &Env, retention: Duration) -> Result<Duration, ConfigError> {
    let default = hawkeye_store::DEFAULT_ROLLUP_RETENTION.max(retention);
    let rollup = env.duration(hawkeye_store::redis_store::ROLLUP_RETENTION_VAR, default)?;
    match hawkeye_store::redis_store::rollup_retention_problem(retention, rollup) {
        Some(reason) => Err(ConfigError {
            variable: hawkeye_store::redis_store::ROLLUP_RETENTION_VAR.into(),
            reason,
        }),
        None => Ok(rollup),
    }
}

/// Where the store is and how keys are laid out (`REDIS_URL`,
/// `HAWKEYE_KEY_PREFIX`, `HAWKEYE_RETENTION`).
#[derive(Clone)]
pub struct StoreSettings {
    pub url: String,
    pub key_prefix: String,
    pub retention: Duration,
}

impl StoreSettings {
    pub fn from_env() -> Result<StoreSettings, ConfigError> {
        StoreSettings::from_reader(&Env::process())
    }

    pub fn from_reader(env: &Env) -> Result<StoreSettings, ConfigError> {
        Ok(StoreSettings {
            url: env.string_or("REDIS_URL", "redis://127.0.0.1:6379"),
            key_prefix: env.string_or("HAWKEYE_KEY_PREFIX", "hawkeye"),
            retention: env.duration("HAWKEYE_RETENTION", Duration::from_secs(3600))?,
        })
    }
}

impl std::fmt::Debug for StoreSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreSettings")
            .field("url", &hawkeye_store::redis_store::redact_url(&self.url))
            .field("key_prefix", &self.key_prefix)
            .field("retention", &self.retention)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(pairs: &[(&str, &str)]) -> Env {
        Env::from_pairs(pairs)
    }

    #[test]
    fn defaults_match_the_spec() {
        let c = ServerConfig::from_reader(&reader(&[])).unwrap();
        assert_eq!(c.socket_path, PathBuf::from("/tmp/hawkeye.sock"));
        assert_eq!(c.socket_mode, 0o660);
        assert_eq!(c.flush_interval, Duration::from_millis(200));
        assert_eq!(c.retention, Duration::from_secs(3600));
        assert_eq!(c.max_series, 100_000);
        assert_eq!(c.max_line_bytes, 1 << 20);
        assert!(c.dgram_socket_path.is_none());
        assert_eq!(c.max_batch, 1000);
        assert_eq!(c.line_limits, Limits::default());
        assert_eq!(c.line_timeout, Duration::from_secs(10));
        assert!(c.dgram_max_bytes >= 65_536, "{}", c.dgram_max_bytes);
        assert_eq!(c.reject_log_interval, Duration::from_secs(10));
        assert_eq!(c.rollup_retention, Duration::from_secs(35 * 86_400));
    }

    #[test]
    fn the_rollup_retention_is_never_shorter_than_the_retention() {
        let c = ServerConfig::from_reader(&reader(&[("HAWKEYE_ROLLUP_RETENTION", "7d")])).unwrap();
        assert_eq!(c.rollup_retention, Duration::from_secs(7 * 86_400));
        let c = ServerConfig::from_reader(&reader(&[("HAWKEYE_RETENTION", "40d")])).unwrap();
        assert_eq!(c.rollup_retention, Duration::from_secs(40 * 86_400));
        let e = ServerConfig::from_reader(&reader(&[
            ("HAWKEYE_RETENTION", "2h"),
            ("HAWKEYE_ROLLUP_RETENTION", "1h"),
        ]))
        .unwrap_err();
        assert_eq!(e.variable, "HAWKEYE_ROLLUP_RETENTION");
        assert!(e.reason.contains("shorter than HAWKEYE_RETENTION"), "{e}");
        let e = ServerConfig::from_reader(&reader(&[("HAWKEYE_ROLLUP_RETENTION", "soon")]))
            .unwrap_err();
        assert_eq!(e.variable, "HAWKEYE_ROLLUP_RETENTION");
    }

    #[test]
    fn the_gauge_mode_is_read_per_listener() {
        let c = ServerConfig::from_reader(&reader(&[("HAWKEYE_GAUGE_MODE", "DogStatsD")])).unwrap();
        assert_eq!(c.line_limits.gauge_mode, GaugeMode::DogStatsd);
        assert_eq!(c.dgram_line_limits().gauge_mode, GaugeMode::DogStatsd);
        let c = ServerConfig::from_reader(&reader(&[("HAWKEYE_DGRAM_GAUGE_MODE", "dogstatsd")]))
            .unwrap();
        assert_eq!(c.line_limits.gauge_mode, GaugeMode::Statsd);
        assert_eq!(c.dgram_line_limits().gauge_mode, GaugeMode::DogStatsd);
        let e =
            ServerConfig::from_reader(&reader(&[("HAWKEYE_GAUGE_MODE", "graphite")])).unwrap_err();
        assert_eq!(e.variable, "HAWKEYE_GAUGE_MODE");
        assert!(e.reason.contains("expected statsd or dogstatsd"), "{e}");
    }

    #[test]
    fn the_udp_and_tcp_listeners_are_off_unless_an_address_is_set() {
        let c = ServerConfig::from_reader(&reader(&[])).unwrap();
        assert_eq!((c.udp_addr, c.tcp_addr, c.http_addr), (None, None, None));
        let c =
            ServerConfig::from_reader(&reader(&[("HAWKEYE_HTTP_ADDR", "0.0.0.0:9102")])).unwrap();
        assert_eq!(c.http_addr, Some("0.0.0.0:9102".parse().unwrap()));
        let c = ServerConfig::from_reader(&reader(&[("HAWKEYE_TCP_ADDR", "[::1]:8125")])).unwrap();
        assert_eq!(c.tcp_addr, Some("[::1]:8125".parse().unwrap()));
        let e = ServerConfig::from_reader(&reader(&[("HAWKEYE_TCP_ADDR", "8125")])).unwrap_err();
        assert_eq!(e.variable, "HAWKEYE_TCP_ADDR");
        let c =
            ServerConfig::from_reader(&reader(&[("HAWKEYE_UDP_ADDR", "127.0.0.1:8125")])).unwrap();
        assert_eq!(c.udp_addr, Some("127.0.0.1:8125".parse().unwrap()));
        let e =
            ServerConfig::from_reader(&reader(&[("HAWKEYE_UDP_ADDR", "localhost")])).unwrap_err();
        assert_eq!(e.variable, "HAWKEYE_UDP_ADDR");
    }

    #[test]
    fn limits_are_read_and_checked() {
        let c = ServerConfig::from_reader(&reader(&[
            ("HAWKEYE_MAX_TAGS", "5"),
            ("HAWKEYE_MAX_KEY_BYTES", "300"),
            ("HAWKEYE_MAX_BATCH", "7"),
            ("HAWKEYE_MAX_OUTPUT_BYTES", "4096"),
            ("HAWKEYE_MAX_PENDING_BYTES", "2000000"),
            ("HAWKEYE_LINE_TIMEOUT", "1500ms"),
            ("HAWKEYE_EVICT_IDLE_AFTER", "250ms"),
        ]))
        .unwrap();
        assert_eq!(c.evict_idle_after, Duration::from_millis(250));
        assert_eq!(c.server_id, None);
        assert_eq!(c.line_limits.max_tags, 5);
        assert_eq!(c.line_limits.max_key_bytes, 300);
        assert_eq!(c.line_limits.gauge_mode, GaugeMode::Statsd);
        assert_eq!(c.dgram_line_limits().gauge_mode, GaugeMode::Statsd);
        assert_eq!(c.max_batch, 7);
        assert_eq!(c.max_output_bytes, 4096);
        assert_eq!(c.max_pending_bytes, 2_000_000);
        assert_eq!(c.line_timeout, Duration::from_millis(1500));
        for (var, bad) in [
            ("HAWKEYE_MAX_TAGS", "0"),
            ("HAWKEYE_MAX_BATCH", "-1"),
            ("HAWKEYE_LINE_TIMEOUT", "0s"),
            ("HAWKEYE_MAX_PENDING_BYTES", "1000"),
        ] {
            let e = ServerConfig::from_reader(&reader(&[(var, bad)])).unwrap_err();
            assert!(e.to_string().starts_with(var), "{e}");
        }
    }

    #[test]
    fn values_and_errors_name_the_variable() {
        let c = ServerConfig::from_reader(&reader(&[
            ("HAWKEYE_FLUSH_INTERVAL", "50ms"),
            ("HAWKEYE_SOCKET_MODE", "0600"),
            ("HAWKEYE_RETENTION", "120"),
            ("HAWKEYE_SERVER_ID", " web-1 "),
        ]))
        .unwrap();
        assert_eq!(c.server_id.as_deref(), Some("web-1"));
        assert_eq!(c.flush_interval, Duration::from_millis(50));
        assert_eq!(c.socket_mode, 0o600);
        assert_eq!(c.retention, Duration::from_secs(120));
        for (var, bad) in [
            ("HAWKEYE_MAX_SERIES", "lots"),
            ("HAWKEYE_SOCKET_MODE", "rw-rw----"),
            ("HAWKEYE_FLUSH_INTERVAL", "soon"),
            ("HAWKEYE_FLUSH_INTERVAL", "0"),
        ] {
            let e = ServerConfig::from_reader(&reader(&[(var, bad)])).unwrap_err();
            assert!(e.to_string().starts_with(var), "{e}");
        }
    }

    #[test]
    fn store_settings_never_show_the_password() {
        let s =
            StoreSettings::from_reader(&reader(&[("REDIS_URL", "redis://app:s3cret@db:6379/0")]))
                .unwrap();
        let shown = format!("{s:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("app:***@db:6379"), "{shown}");
    }
}

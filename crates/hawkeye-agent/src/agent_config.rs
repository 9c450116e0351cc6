//! The agent's settings: from the environment (and `.env` files) for the
//! binary, or built in code by an application that embeds the agent.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hawkeye_env::{Env, EnvError};
use hawkeye_mail::QueueConfig;

use crate::delivery::DEFAULT_LEASE;
use crate::engine::{EngineSettings, DEFAULT_STATE_TTL};
use crate::error::AgentError;
use crate::monitors::{default_monitors_path, MonitorsFile, Retention};

/// The default `HAWKEYE_RETENTION`: per-second data.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(3600);
/// The default `HAWKEYE_ROLLUP_RETENTION`: per-minute rollups, what
/// monitors' windows and SLO periods may reach.
pub const DEFAULT_ROLLUP_RETENTION: Duration = hawkeye_store::DEFAULT_ROLLUP_RETENTION;

/// The server's default `HAWKEYE_FLUSH_INTERVAL`.
const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_millis(200);
/// The default [`AgentConfig::watermark_wait`].
const DEFAULT_WATERMARK_WAIT: Duration = Duration::from_secs(10);
/// The longest [`AgentConfig::watermark_wait`]: past it the agent would
/// rather check on what it has.
const MAX_WATERMARK_WAIT: Duration = Duration::from_secs(3600);

/// Where the monitors come from.
#[derive(Debug, Clone, PartialEq)]
pub enum MonitorsSource {
    /// A file, read (and validated) at start.
    File(PathBuf),
    /// Monitors built or loaded by the application.
    Inline(MonitorsFile),
}

#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub monitors: MonitorsSource,
    /// `SERVICE_NAME`: in subjects, bodies and state keys.
    pub service: String,
    /// `ENVIRONMENT`: in subjects, bodies and state keys.
    pub environment: String,
    /// `MAIL_FROM`: the sender of alert mail.
    pub mail_from: String,
    /// Sending the outbox: `concurrency` (mails at once), retry backoff,
    /// `max_age` (`MAIL_MAX_AGE`).
    pub mail_queue: QueueConfig,
    /// How long a mail being sent is left to this agent before another may
    /// take it (`MAIL_LEASE`; longer than `SMTP_TIMEOUT`).
    pub mail_lease: Duration,
    /// How long one webhook post may take (`WEBHOOK_TIMEOUT`); an attempt
    /// is cut at `MAIL_LEASE` in any case.
    pub webhook_timeout: Duration,
    /// How long an alert state lives without a write (`ALERT_STATE_TTL`).
    pub state_ttl: Duration,
    /// How long shutdown waits for queued mail to go out.
    pub shutdown_grace: Duration,
    /// How long after an interval ends its check first looks at the
    /// servers' watermark: the earliest a server's flush can have covered
    /// the interval. From the environment: `HAWKEYE_FLUSH_INTERVAL`.
    pub evaluation_delay: Duration,
    /// How much longer a check waits for the servers' watermark to reach
    /// the end of its window before it runs anyway, with a warning
    /// (`HAWKEYE_WATERMARK_WAIT`; docs/cluster.md, "Watermark").
    pub watermark_wait: Duration,
    /// `REDIS_URL`, `HAWKEYE_KEY_PREFIX`, `HAWKEYE_RETENTION`: read by the
    /// binary to open the store; [`crate::start`] takes the store ready-made
    /// and does not look at them.
    pub redis_url: String,
    pub key_prefix: String,
    pub retention: Duration,
    /// `HAWKEYE_ROLLUP_RETENTION`: how far back windows and SLO periods
    /// may read (the store's per-minute rollups).
    pub rollup_retention: Duration,
    /// `AGENT_HTTP_ADDR`: where the status page, `/api/alerts` and
    /// `/metrics` listen (docs/status-page.md); `None` (unset): off.
    pub http_addr: Option<SocketAddr>,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            monitors: MonitorsSource::File(default_monitors_path()),
            service: "hawkeye".into(),
            environment: "dev".into(),
            mail_from: "hawkeye@localhost".into(),
            mail_queue: QueueConfig::default(),
            mail_lease: DEFAULT_LEASE,
            webhook_timeout: hawkeye_notify::DEFAULT_TIMEOUT,
            state_ttl: DEFAULT_STATE_TTL,
            shutdown_grace: Duration::from_secs(5),
            evaluation_delay: DEFAULT_FLUSH_INTERVAL,
            watermark_wait: DEFAULT_WATERMARK_WAIT,
            redis_url: "redis://127.0.0.1:6379".into(),
            key_prefix: "hawkeye".into(),
            retention: DEFAULT_RETENTION,
            rollup_retention: DEFAULT_ROLLUP_RETENTION,
            http_addr: None,
        }
    }
}

impl AgentConfig {
    /// What monitors are checked against: `interval` within
    /// [`AgentConfig::retention`], windows and SLO periods within
    /// [`AgentConfig::rollup_retention`].
    pub fn retention_limits(&self) -> Retention {
        Retention {
            per_second: self.retention,
            rollup: self.rollup_retention,
        }
    }

    /// What the evaluation needs of these settings (the agent's, and a
    /// backtest's, which must match it).
    pub fn engine_settings(&self) -> EngineSettings {
        EngineSettings {
            service: self.service.clone(),
            environment: self.environment.clone(),
            mail_from: self.mail_from.clone(),
            evaluation_delay_ms: self.evaluation_delay.as_millis() as u64,
            state_ttl: self.state_ttl,
        }
    }

    pub fn with_monitors(mut self, monitors: MonitorsFile) -> Self {
        self.monitors = MonitorsSource::Inline(monitors);
        self
    }

    pub fn with_monitors_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.monitors = MonitorsSource::File(path.into());
        self
    }

    pub fn with_service(
        mut self,
        service: impl Into<String>,
        environment: impl Into<String>,
    ) -> Self {
        self.service = service.into();
        self.environment = environment.into();
        self
    }

    pub fn with_mail_from(mut self, from: impl Into<String>) -> Self {
        self.mail_from = from.into();
        self
    }

    pub fn with_mail_queue(mut self, queue: QueueConfig) -> Self {
        self.mail_queue = queue;
        self
    }

    /// Reads `.env` files (see [`load_dotenv`]) and then the environment
    /// (see [`AgentConfig::from_reader`]).
    pub fn from_env() -> Result<AgentConfig, AgentError> {
        load_dotenv(Path::new("."));
        AgentConfig::from_reader(&Env::process())
    }

    /// Reads `MONITOR_CONFIG_FILE`, `SERVICE_NAME`, `ENVIRONMENT`,
    /// `MAIL_FROM`, `MAIL_MAX_AGE` (how long a mail is retried, default
    /// 24h), `MAIL_LEASE`, `WEBHOOK_TIMEOUT`, `ALERT_STATE_TTL`, `REDIS_URL`,
    /// `HAWKEYE_KEY_PREFIX`, `HAWKEYE_RETENTION`, `HAWKEYE_ROLLUP_RETENTION`,
    /// `HAWKEYE_FLUSH_INTERVAL`, `HAWKEYE_WATERMARK_WAIT`, `AGENT_HTTP_ADDR`.
    pub fn from_reader(env: &Env) -> Result<AgentConfig, AgentError> {
        let d = AgentConfig::default();
        let bad = |e: EnvError| AgentError::Env(e.to_string());
        let flush = env
            .duration("HAWKEYE_FLUSH_INTERVAL", DEFAULT_FLUSH_INTERVAL)
            .map_err(bad)?;
        let mut mail_queue = d.mail_queue.clone();
        mail_queue.max_age = env
            .duration("MAIL_MAX_AGE", mail_queue.max_age)
            .map_err(bad)?;
        let state_ttl = env.duration("ALERT_STATE_TTL", d.state_ttl).map_err(bad)?;
        let config = AgentConfig {
            evaluation_delay: flush,
            watermark_wait: env
                .duration("HAWKEYE_WATERMARK_WAIT", d.watermark_wait)
                .map_err(bad)?,
            mail_queue,
            mail_lease: env.duration("MAIL_LEASE", d.mail_lease).map_err(bad)?,
            webhook_timeout: env
                .duration("WEBHOOK_TIMEOUT", d.webhook_timeout)
                .map_err(bad)?,
            state_ttl,
            retention: env
                .duration("HAWKEYE_RETENTION", d.retention)
                .map_err(bad)?,
            rollup_retention: env
                .duration("HAWKEYE_ROLLUP_RETENTION", d.rollup_retention)
                .map_err(bad)?,
            monitors: MonitorsSource::File(
                env.get("MONITOR_CONFIG_FILE")
                    .map(PathBuf::from)
                    .unwrap_or_else(default_monitors_path),
            ),
            service: env.string_or("SERVICE_NAME", &d.service),
            environment: env.string_or("ENVIRONMENT", &d.environment),
            mail_from: env.string_or("MAIL_FROM", &d.mail_from),
            redis_url: env.string_or("REDIS_URL", &d.redis_url),
            key_prefix: env.string_or("HAWKEYE_KEY_PREFIX", &d.key_prefix),
            http_addr: http_addr(env)?,
            ..d
        };
        config.validate()?;
        Ok(config)
    }

    /// The rules between settings, for settings from the environment and
    /// built in code alike ([`crate::start`] checks them too).
    pub fn validate(&self) -> Result<(), AgentError> {
        hawkeye_mail::parse_mailbox(&self.mail_from)
            .map_err(|e| AgentError::Env(format!("MAIL_FROM: {e}")))?;
        let fmt = |d: Duration| humantime::format_duration(d).to_string();
        if self.state_ttl < Duration::from_secs(60) {
            return Err(AgentError::Env(
                "ALERT_STATE_TTL: must be at least 1m (states are rewritten at half of it)".into(),
            ));
        }
        // The outbox expires with the states (one TTL for all alert keys):
        // a mail retried longer than that would vanish unsent.
        if self.state_ttl < self.mail_queue.max_age {
            return Err(AgentError::Env(format!(
                "ALERT_STATE_TTL ({}) must be at least MAIL_MAX_AGE ({}): mail not yet sent is kept in the store as long as an alert state",
                fmt(self.state_ttl),
                fmt(self.mail_queue.max_age)
            )));
        }
        if self.watermark_wait > MAX_WATERMARK_WAIT {
            return Err(AgentError::Env(format!(
                "HAWKEYE_WATERMARK_WAIT ({}) must be at most {}: a check waits that long for a slow server",
                fmt(self.watermark_wait),
                fmt(MAX_WATERMARK_WAIT)
            )));
        }
        if self.mail_lease < Duration::from_secs(1) {
            return Err(AgentError::Env(format!(
                "MAIL_LEASE ({}) must be at least 1s: another agent may send a mail once its lease has run out",
                fmt(self.mail_lease)
            )));
        }
        if self.webhook_timeout.is_zero() {
            return Err(AgentError::Env(
                "WEBHOOK_TIMEOUT (0s) must be more than 0s".to_string(),
            ));
        }
        Ok(())
    }
}

/// `AGENT_HTTP_ADDR`: `host:port` (an IP address; port 0 picks a free
/// one), or unset or empty for no HTTP endpoint.
fn http_addr(env: &Env) -> Result<Option<SocketAddr>, AgentError> {
    let Some(text) = env.get("AGENT_HTTP_ADDR").filter(|t| !t.trim().is_empty()) else {
        return Ok(None);
    };
    text.trim().parse().map(Some).map_err(|_| {
        AgentError::Env(format!(
            "AGENT_HTTP_ADDR: {text:?} is not an address such as 127.0.0.1:9102 or [::1]:9102"
        ))
    })
}

/// The retention limits monitors are checked against, from
/// `HAWKEYE_RETENTION` and `HAWKEYE_ROLLUP_RETENTION` (for the command
/// line, which cannot ask the server).
pub fn retention_from_env(env: &Env) -> Result<Retention, EnvError> {
    Ok(Retention {
        per_second: env.duration("HAWKEYE_RETENTION", DEFAULT_RETENTION)?,
        rollup: env.duration("HAWKEYE_ROLLUP_RETENTION", DEFAULT_ROLLUP_RETENTION)?,
    })
}

/// Loads `.env` from `dir`, then `.{ENV}.env` (see [`hawkeye_env`]). A file
/// that cannot be parsed is reported on stderr (logging is not set up yet
/// when this runs) and the agent goes on with the environment it has; so
/// are the loader's notices (lower-case keys of the Go hawkeye).
pub fn load_dotenv(dir: &Path) {
    match hawkeye_env::load_env_files_from(dir) {
        Ok(loaded) => loaded.notices.iter().for_each(|n| eprintln!("notice: {n}")),
        Err(e) => eprintln!("warning: ignoring the .env files: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_come_from_the_reader() {
        let env = Env::from_pairs(&[
            ("HAWKEYE_RETENTION", "2h"),
            ("MAIL_LEASE", "10s"),
            ("SERVICE_NAME", "shop"),
            ("HAWKEYE_FLUSH_INTERVAL", "1s"),
            ("HAWKEYE_WATERMARK_WAIT", "3s"),
        ]);
        let c = AgentConfig::from_reader(&env).unwrap();
        assert_eq!(c.retention, Duration::from_secs(7200));
        assert_eq!(c.rollup_retention, DEFAULT_ROLLUP_RETENTION);
        assert_eq!(c.mail_lease, Duration::from_secs(10));
        assert_eq!(c.service, "shop");
        assert_eq!(c.evaluation_delay, Duration::from_secs(1));
        assert_eq!(c.watermark_wait, Duration::from_secs(3));
        let d = AgentConfig::from_reader(&Env::from_pairs(&[])).unwrap();
        assert_eq!(d.watermark_wait, Duration::from_secs(10));
        let e = AgentConfig::from_reader(&Env::from_pairs(&[("HAWKEYE_WATERMARK_WAIT", "2h")]))
            .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("HAWKEYE_WATERMARK_WAIT (2h) must be at most 1h"),
            "{e}"
        );
        let e =
            AgentConfig::from_reader(&Env::from_pairs(&[("ALERT_STATE_TTL", "5s")])).unwrap_err();
        assert!(e.to_string().starts_with("ALERT_STATE_TTL:"), "{e}");
        let e =
            AgentConfig::from_reader(&Env::from_pairs(&[("MAIL_MAX_AGE", "soon")])).unwrap_err();
        assert!(e.to_string().starts_with("MAIL_MAX_AGE:"), "{e}");
    }

    #[test]
    fn the_http_address_is_off_unless_set() {
        let read = |v: &str| AgentConfig::from_reader(&Env::from_pairs(&[("AGENT_HTTP_ADDR", v)]));
        let unset = AgentConfig::from_reader(&Env::from_pairs(&[])).unwrap();
        assert_eq!(unset.http_addr, None);
        assert_eq!(read("").unwrap().http_addr, None);
        assert_eq!(
            read("127.0.0.1:9102").unwrap().http_addr,
            Some("127.0.0.1:9102".parse().unwrap())
        );
        let e = read("localhost").unwrap_err().to_string();
        assert!(
            e.starts_with("AGENT_HTTP_ADDR: \"localhost\" is not an address"),
            "{e}"
        );
    }

    /// The outbox expires with the alert states: a mail retried for longer
    /// would disappear unsent. A lease of 0 would let every agent send
    /// every mail.
    #[test]
    fn settings_that_would_lose_or_duplicate_mail_are_refused() {
        let err = |pairs: &[(&str, &str)]| {
            AgentConfig::from_reader(&Env::from_pairs(pairs))
                .unwrap_err()
                .to_string()
        };
        let e = err(&[("ALERT_STATE_TTL", "1h")]);
        assert!(
            e.starts_with("ALERT_STATE_TTL (1h) must be at least MAIL_MAX_AGE (1day)"),
            "{e}"
        );
        assert!(AgentConfig::from_reader(&Env::from_pairs(&[
            ("ALERT_STATE_TTL", "1h"),
            ("MAIL_MAX_AGE", "1h")
        ]))
        .is_ok());
        let e = err(&[("MAIL_LEASE", "0s")]);
        assert!(e.starts_with("MAIL_LEASE (0s) must be at least 1s"), "{e}");
        let e = err(&[("WEBHOOK_TIMEOUT", "0s")]);
        assert!(
            e.starts_with("WEBHOOK_TIMEOUT (0s) must be more than 0s"),
            "{e}"
        );
        // A short lease with the default webhook timeout starts: the lease
        // ends an attempt in any case.
        assert!(AgentConfig::from_reader(&Env::from_pairs(&[("MAIL_LEASE", "3s")])).is_ok());
        // Built in code: start() checks the same rules.
        let config = AgentConfig {
            state_ttl: Duration::from_secs(3600),
            ..AgentConfig::default()
        };
        assert!(config.validate().is_err());
    }
}

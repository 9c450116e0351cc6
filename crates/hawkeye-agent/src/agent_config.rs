//! The agent's settings: from the environment (and `.env` files) for the
//! binary, or built in code by an application that embeds the agent.

use std::path::{Path, PathBuf};
use std::time::Duration;

use hawkeye_mail::env::env_var;
use hawkeye_mail::QueueConfig;
use hawkeye_protocol::{parse_duration, PlainUnit};

use crate::config::{default_monitors_path, MonitorsFile};
use crate::AgentError;

/// The server's default `HAWKEYE_FLUSH_INTERVAL`.
const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_millis(200);
/// Time for a flush to reach the store after it starts.
const FLUSH_MARGIN: Duration = Duration::from_millis(300);

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
    /// The sending queue (capacity, retry backoff, `max_age`).
    pub mail_queue: QueueConfig,
    /// How long shutdown waits for queued mail to go out.
    pub shutdown_grace: Duration,
    /// How long after an interval ends its check runs: longer than the
    /// server's flush interval, so the interval's events are all in the
    /// store. From the environment: `HAWKEYE_FLUSH_INTERVAL` + 300 ms.
    pub evaluation_delay: Duration,
    /// `REDIS_URL`, `HAWKEYE_KEY_PREFIX`, `HAWKEYE_RETENTION`: read by the
    /// binary to open the store; [`crate::start`] takes the store ready-made
    /// and does not look at them.
    pub redis_url: String,
    pub key_prefix: String,
    pub retention: Duration,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            monitors: MonitorsSource::File(default_monitors_path()),
            service: "hawkeye".into(),
            environment: "dev".into(),
            mail_from: "hawkeye@localhost".into(),
            mail_queue: QueueConfig::default(),
            shutdown_grace: Duration::from_secs(5),
            evaluation_delay: DEFAULT_FLUSH_INTERVAL + FLUSH_MARGIN,
            redis_url: "redis://127.0.0.1:6379".into(),
            key_prefix: "hawkeye".into(),
            retention: Duration::from_secs(3600),
        }
    }
}

impl AgentConfig {
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

    /// Reads `.env` files (see [`load_dotenv`]) and then the environment:
    /// `MONITOR_CONFIG_FILE`, `SERVICE_NAME`, `ENVIRONMENT`, `MAIL_FROM`,
    /// `MAIL_MAX_AGE` (how long a mail is retried, default 24h),
    /// `REDIS_URL`, `HAWKEYE_KEY_PREFIX`, `HAWKEYE_RETENTION`.
    pub fn from_env() -> Result<AgentConfig, AgentError> {
        load_dotenv(Path::new("."));
        let d = AgentConfig::default();
        let retention = match env_var("HAWKEYE_RETENTION") {
            Some(s) => parse_duration(&s, PlainUnit::Seconds)
                .map_err(|e| AgentError::Env(format!("HAWKEYE_RETENTION: {e}")))?,
            None => d.retention,
        };
        let flush = match env_var("HAWKEYE_FLUSH_INTERVAL") {
            Some(s) => parse_duration(&s, PlainUnit::Seconds)
                .map_err(|e| AgentError::Env(format!("HAWKEYE_FLUSH_INTERVAL: {e}")))?,
            None => DEFAULT_FLUSH_INTERVAL,
        };
        let mut mail_queue = d.mail_queue.clone();
        if let Some(s) = env_var("MAIL_MAX_AGE") {
            mail_queue.max_age = parse_duration(&s, PlainUnit::Seconds)
                .map_err(|e| AgentError::Env(format!("MAIL_MAX_AGE: {e}")))?;
        }
        let config = AgentConfig {
            evaluation_delay: flush + FLUSH_MARGIN,
            mail_queue,
            monitors: MonitorsSource::File(
                env_var("MONITOR_CONFIG_FILE")
                    .map(PathBuf::from)
                    .unwrap_or_else(default_monitors_path),
            ),
            service: env_var("SERVICE_NAME").unwrap_or(d.service),
            environment: env_var("ENVIRONMENT").unwrap_or(d.environment),
            mail_from: env_var("MAIL_FROM").unwrap_or(d.mail_from),
            redis_url: env_var("REDIS_URL").unwrap_or(d.redis_url),
            key_prefix: env_var("HAWKEYE_KEY_PREFIX").unwrap_or(d.key_prefix),
            retention,
            ..d
        };
        hawkeye_mail::parse_mailbox(&config.mail_from)
            .map_err(|e| AgentError::Env(format!("MAIL_FROM: {e}")))?;
        Ok(config)
    }
}

/// Loads `.env` from `dir`, then `.{ENV}.env` (see [`hawkeye_env`]). A file
/// that cannot be parsed is reported on stderr (logging is not set up yet
/// when this runs) and the agent goes on with the environment it has.
pub fn load_dotenv(dir: &Path) {
    if let Err(e) = hawkeye_env::load_env_files_from(dir) {
        eprintln!("warning: ignoring the .env files: {e}");
    }
}

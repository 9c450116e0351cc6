//! Server and agent inside an application's own tokio runtime, in one call.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! // REDIS_URL set: Redis; otherwise the in-memory store. MAILER etc. as the README's configuration table says.
//! let hawkeye = hawkeye::embed::start(hawkeye::embed::EmbedConfig::from_env()?).await?;
//! let client = hawkeye.client()?;
//! client.incr("jobs.done", &[]);
//! // ... on the way out:
//! client.shutdown().await?;
//! hawkeye.shutdown().await;
//! # Ok(()) }
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hawkeye_agent::{AgentConfig, AgentError, AgentHandle, AgentStats};
use hawkeye_client::{Client, ClientConfig, ClientError};
use hawkeye_mail::{LogMailer, MailError, Mailer};
use hawkeye_protocol::jsonrpc::StatsResult;
use hawkeye_server::{ConfigError, ServerConfig, ServerError, ServerHandle, StoreSettings};
use hawkeye_store::{MemoryStore, Store, StoreError};

/// Which store the embedded server writes to and the agent reads.
#[derive(Clone)]
pub enum StoreChoice {
    /// Kept in this process (lost when it exits).
    Memory,
    /// `redis://`, `rediss://`, `redis+unix://` or a cluster list.
    Url { url: String, key_prefix: String },
    /// One the application built.
    Given(Arc<dyn Store>),
}

impl std::fmt::Debug for StoreChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreChoice::Memory => f.write_str("Memory"),
            StoreChoice::Url { url, key_prefix } => f
                .debug_struct("Url")
                .field("url", &hawkeye_store::redis_store::redact_url(url))
                .field("key_prefix", key_prefix)
                .finish(),
            StoreChoice::Given(_) => f.write_str("Given"),
        }
    }
}

/// What to start.
#[derive(Clone)]
pub struct EmbedConfig {
    pub server: ServerConfig,
    /// `None`: no agent (metrics are collected, no alerts).
    pub agent: Option<AgentConfig>,
    pub store: StoreChoice,
    /// `None`: the log mailer.
    pub mailer: Option<Arc<dyn Mailer>>,
}

#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error("server settings: {0}")]
    ServerConfig(#[from] ConfigError),
    #[error("cannot open the store: {0}")]
    Store(#[from] StoreError),
    #[error("cannot start the server: {0}")]
    Server(#[from] ServerError),
    #[error("cannot start the agent: {0}")]
    Agent(#[from] AgentError),
    #[error("mailer settings: {0}")]
    Mailer(#[from] MailError),
}

impl EmbedConfig {
    /// Server, agent and mailer from the environment (the README's configuration table). The store is
    /// Redis when `REDIS_URL` is set, the in-memory store otherwise.
    pub fn from_env() -> Result<EmbedConfig, EmbedError> {
        let server = ServerConfig::from_env()?;
        let agent = AgentConfig::from_env()?;
        let store = match hawkeye_env::Env::process().get("REDIS_URL") {
            Some(_) => {
                let settings = StoreSettings::from_env()?;
                StoreChoice::Url {
                    url: settings.url,
                    key_prefix: settings.key_prefix,
                }
            }
            None => StoreChoice::Memory,
        };
        Ok(EmbedConfig {
            server,
            agent: Some(agent),
            store,
            mailer: Some(hawkeye_mail::mailer_from_env()?),
        })
    }

    /// The in-memory store, a server on `socket_path` (other settings
    /// default) and an agent on `monitors.yaml` (or `MONITOR_CONFIG_FILE`)
    /// mailing to the log.
    pub fn in_memory(socket_path: impl Into<PathBuf>) -> EmbedConfig {
        EmbedConfig {
            server: ServerConfig {
                socket_path: socket_path.into(),
                ..Default::default()
            },
            agent: Some(AgentConfig::default()),
            store: StoreChoice::Memory,
            mailer: None,
        }
    }

    pub fn without_agent(mut self) -> EmbedConfig {
        self.agent = None;
        self
    }

    pub fn with_agent(mut self, agent: AgentConfig) -> EmbedConfig {
        self.agent = Some(agent);
        self
    }

    pub fn with_mailer(mut self, mailer: Arc<dyn Mailer>) -> EmbedConfig {
        self.mailer = Some(mailer);
        self
    }

    pub fn with_store(mut self, store: StoreChoice) -> EmbedConfig {
        self.store = store;
        self
    }
}

/// Server and agent running in this process.
pub struct Embedded {
    server: ServerHandle,
    agent: Option<AgentHandle>,
    store: Arc<dyn Store>,
}

/// Starts the server, then the agent, on the current tokio runtime.
pub async fn start(config: EmbedConfig) -> Result<Embedded, EmbedError> {
    let store: Arc<dyn Store> = match config.store {
        StoreChoice::Memory => Arc::new(MemoryStore::with_rollup_retention(
            config.server.retention,
            config.server.rollup_retention,
        )),
        StoreChoice::Url { url, key_prefix } => {
            hawkeye_store::open_with_env(&url, &key_prefix, config.server.retention).await?
        }
        StoreChoice::Given(store) => store,
    };
    let flush_interval = config.server.flush_interval;
    let server = hawkeye_server::start(config.server, Arc::clone(&store)).await?;
    let agent = match config.agent {
        None => None,
        Some(mut agent) => {
            // No earlier than the server's first flush after an interval;
            // the agent then waits for the server's watermark.
            agent.evaluation_delay = agent.evaluation_delay.max(flush_interval);
            let mailer = config.mailer.unwrap_or_else(|| Arc::new(LogMailer::new()));
            match hawkeye_agent::start(agent, Arc::clone(&store), mailer).await {
                Ok(handle) => Some(handle),
                Err(e) => {
                    if let Err(stop) = server.shutdown().await {
                        tracing::warn!(error = %stop, "stopping the server after the agent failed");
                    }
                    return Err(e.into());
                }
            }
        }
    };
    Ok(Embedded {
        server,
        agent,
        store,
    })
}

impl Embedded {
    /// The socket clients send to.
    pub fn socket_path(&self) -> &Path {
        self.server.socket_path()
    }

    pub fn store(&self) -> Arc<dyn Store> {
        Arc::clone(&self.store)
    }

    /// A client for this server, otherwise configured by default.
    pub fn client(&self) -> Result<Client, ClientError> {
        Client::new(ClientConfig::new(self.socket_path()))
    }

    pub fn server_stats(&self) -> StatsResult {
        self.server.stats()
    }

    pub fn agent_stats(&self) -> Option<AgentStats> {
        self.agent.as_ref().map(AgentHandle::stats)
    }

    /// Stops the server (it answers what it read and writes its last
    /// aggregates), then the agent (it sends the mail still queued).
    pub async fn shutdown(self) {
        if let Err(e) = self.server.shutdown().await {
            tracing::warn!(error = %e, "the hawkeye server did not stop cleanly");
        }
        if let Some(agent) = self.agent {
            agent.shutdown().await;
        }
    }
}

//! What can keep the agent from starting or reloading.

use hawkeye_mail::MailError;
use hawkeye_store::StoreError;

use crate::monitors::ConfigErrors;

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The monitors are invalid; every problem is listed, one per line.
    #[error("invalid monitors:\n{0}")]
    Config(#[from] ConfigErrors),
    /// A setting from the environment is missing or wrong.
    #[error("{0}")]
    Env(String),
    #[error(transparent)]
    Mail(#[from] MailError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// `AGENT_HTTP_ADDR` cannot be listened on.
    #[error("AGENT_HTTP_ADDR: cannot listen on {addr}: {source}")]
    Http {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    /// The agent has already stopped.
    #[error("the agent is not running")]
    Stopped,
}

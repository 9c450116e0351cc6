use std::path::PathBuf;

/// Why a client could not be created.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("invalid client configuration: {0}")]
    Config(String),
    #[error("cannot start the hawkeye client's background thread: {0}")]
    Thread(#[source] std::io::Error),
}

/// Why [`Client::flush`](crate::Client::flush) could not confirm delivery.
/// The events are kept (within the configured bounds) and sent after the
/// next successful reconnect.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlushError {
    #[error("the hawkeye server at {path} is unreachable: {reason}")]
    Disconnected { path: PathBuf, reason: String },
    #[error("the hawkeye client has been shut down")]
    Closed,
    #[error("the hawkeye server did not confirm within {0:?}")]
    Timeout(std::time::Duration),
}

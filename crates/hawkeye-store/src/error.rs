//! Why a store call failed.

/// A store call that failed as a whole (one query's own problem is a
/// [`crate::window::QueryError`] in its outcome instead).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store could not be reached or did not answer; try again later.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The store answered with something this code does not understand.
    #[error("unexpected reply from the store: {0}")]
    Protocol(String),
    #[error("invalid store configuration: {0}")]
    Config(String),
}

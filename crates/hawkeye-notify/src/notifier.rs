//! What a notifier is: the [`Notifier`] trait, the [`Webhook`] it posts and
//! the [`NotifyError`] it may answer.

use std::sync::Arc;

use async_trait::async_trait;

/// One post to a webhook: the body is already the JSON the receiver gets,
/// so a retry sends the same bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub url: String,
    /// The JSON body (`Content-Type: application/json`).
    pub body: String,
    /// Stable for every attempt of this post (sent as `Idempotency-Key`), so
    /// that a receiver can drop a post it already took.
    pub id: String,
}

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// Not reached, too slow, or a temporary refusal (408, 429, 5xx):
    /// posting again later may work.
    #[error("webhook unavailable: {0}")]
    Unavailable(String),
    /// Refused for good (another 4xx): posting the same body again would
    /// be refused again.
    #[error("webhook refused the post: HTTP {status}: {body}")]
    Rejected { status: u16, body: String },
    #[error("invalid webhook: {0}")]
    Config(String),
}

impl NotifyError {
    /// Whether posting the same body again later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, NotifyError::Unavailable(_))
    }
}

/// Posts webhooks. Object-safe (through `async_trait`), so `Box<dyn
/// Notifier>` and `Arc<dyn Notifier>` work and applications can pass their
/// own (to a chat API with a client they already hold, say).
#[async_trait]
pub trait Notifier: Send + Sync + 'static {
    async fn post(&self, hook: &Webhook) -> Result<(), NotifyError>;
}

#[async_trait]
impl<N: Notifier + ?Sized> Notifier for Arc<N> {
    async fn post(&self, hook: &Webhook) -> Result<(), NotifyError> {
        (**self).post(hook).await
    }
}

#[async_trait]
impl<N: Notifier + ?Sized> Notifier for Box<N> {
    async fn post(&self, hook: &Webhook) -> Result<(), NotifyError> {
        (**self).post(hook).await
    }
}

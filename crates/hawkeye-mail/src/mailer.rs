//! What a mailer is: the [`Mailer`] trait, the [`Mail`] it sends and the
//! [`MailError`] it may answer.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;

/// One mail as hawkeye produces it. Addresses may be bare (`a@example.com`)
/// or with a display name (`On call <a@example.com>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    pub subject: String,
    pub body: String,
    pub from: String,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub bcc: Vec<String>,
    /// The `Message-ID` (without angle brackets), when the sender wants a
    /// stable one (the agent derives it from the alert, so a mail sent
    /// twice around a crash is recognisable); `None`: a new one is made.
    pub message_id: Option<String>,
    /// When the mail was written (its `Date`): the agent dates a mail when
    /// it was recorded, not when a relay finally took it, so that mail
    /// clients show alerts sent after an outage in the order they happened.
    /// `None`: when it is sent.
    pub date: Option<std::time::SystemTime>,
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("invalid address {address:?}: {reason}")]
    InvalidAddress { address: String, reason: String },
    #[error("invalid {header}: {reason}")]
    InvalidHeader {
        header: &'static str,
        reason: String,
    },
    #[error("the mail has no recipients")]
    NoRecipients,
    #[error("could not build the message: {0}")]
    Build(String),
    /// The server could not be reached or answered with a temporary failure;
    /// sending again later may work.
    #[error("mail server unavailable: {0}")]
    Unavailable(String),
    /// The server refused the message for good (5xx).
    #[error("mail server rejected the message: {0}")]
    Rejected(String),
    #[error("could not write mail file {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid mailer configuration: {0}")]
    Config(String),
}

impl MailError {
    /// Whether sending the same mail again later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, MailError::Unavailable(_) | MailError::Io { .. })
    }
}

/// Sends mail. Object-safe (through `async_trait`), so `Box<dyn Mailer>` and
/// `Arc<dyn Mailer>` work and applications can pass their own.
#[async_trait]
pub trait Mailer: Send + Sync + 'static {
    async fn send(&self, mail: Mail) -> Result<(), MailError>;
}

#[async_trait]
impl<M: Mailer + ?Sized> Mailer for Arc<M> {
    async fn send(&self, mail: Mail) -> Result<(), MailError> {
        (**self).send(mail).await
    }
}

#[async_trait]
impl<M: Mailer + ?Sized> Mailer for Box<M> {
    async fn send(&self, mail: Mail) -> Result<(), MailError> {
        (**self).send(mail).await
    }
}

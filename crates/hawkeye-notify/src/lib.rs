//! How hawkeye posts alerts to webhooks.
//!
//! - [`Notifier`]: the object-safe trait applications implement to deliver
//!   a [`Webhook`] their own way (`Arc<dyn Notifier>` works), beside the
//!   mail crate's `Mailer`.
//! - [`HttpNotifier`]: the built-in one, an HTTP `POST` through reqwest
//!   (rustls, the system's root certificates), with a timeout per attempt.
//!
//! What is posted and when (the JSON fields, Slack's body, retries with
//! backoff from the agent's outbox) is in `docs/alerts.md`, "Webhooks".

mod http;
mod notifier;

pub use http::{HttpNotifier, DEFAULT_TIMEOUT};
pub use notifier::{Notifier, NotifyError, Webhook};

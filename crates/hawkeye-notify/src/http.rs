//! The built-in notifier: an HTTP `POST` of the JSON body.
//!
//! A 2xx answer is delivery. 408, 429 and 5xx are temporary (the receiver
//! is overloaded or restarting), as are a refused connection and a timeout:
//! the agent retries those with backoff. Any other answer is final, as an
//! SMTP 5xx is for mail: the same body would be refused again.

use std::time::Duration;

use async_trait::async_trait;

use crate::notifier::{Notifier, NotifyError, Webhook};

/// How long one attempt may take, connection included (`WEBHOOK_TIMEOUT`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The part of a refusal's body kept in the error (and the log).
const BODY_SAMPLE: usize = 200;

pub struct HttpNotifier {
    client: reqwest::Client,
}

impl HttpNotifier {
    /// A notifier whose attempts each end after `timeout`.
    pub fn new(timeout: Duration) -> Result<HttpNotifier, NotifyError> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(concat!("hawkeye/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| NotifyError::Config(e.to_string()))?;
        Ok(HttpNotifier { client })
    }
}

#[async_trait]
impl Notifier for HttpNotifier {
    async fn post(&self, hook: &Webhook) -> Result<(), NotifyError> {
        let response = self
            .client
            .post(&hook.url)
            .header("content-type", "application/json")
            .header("idempotency-key", &hook.id)
            .body(hook.body.clone())
            .send()
            .await
            .map_err(|e| match e.is_builder() {
                true => NotifyError::Config(format!("{}: {e}", hook.url)),
                false => NotifyError::Unavailable(format!("{}: {}", hook.url, chain(&e))),
            })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body = response.text().await.unwrap_or_default();
        let body: String = body.chars().take(BODY_SAMPLE).collect();
        match status.as_u16() {
            408 | 429 | 500..=599 => Err(NotifyError::Unavailable(format!(
                "{}: HTTP {status}: {body}",
                hook.url
            ))),
            code => Err(NotifyError::Rejected { status: code, body }),
        }
    }
}

/// An error with its causes (reqwest's own message is only the outermost).
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

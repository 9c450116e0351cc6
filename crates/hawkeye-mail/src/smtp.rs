//! Sending through an SMTP server with lettre on tokio (rustls for TLS).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use crate::env::{env_var, required_env_var};
use crate::message::build_message;
use crate::{Mail, MailError, Mailer};

/// How the connection to the SMTP server is protected (`SMTP_TLS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain text: only for a relay on the same host or a test server.
    None,
    /// Plain connection upgraded with STARTTLS, which is required.
    StartTls,
    /// TLS from the first byte (SMTPS, usually port 465).
    Tls,
}

impl FromStr for SmtpTls {
    type Err = MailError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" | "off" | "plain" => Ok(SmtpTls::None),
            "starttls" => Ok(SmtpTls::StartTls),
            "tls" | "smtps" => Ok(SmtpTls::Tls),
            other => Err(MailError::Config(format!(
                "SMTP_TLS={other:?} is not one of none, starttls, tls"
            ))),
        }
    }
}

/// A password that never appears in `Debug` output or logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The default `SMTP_TIMEOUT`.
pub const DEFAULT_SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// Where and how to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// `SMTP_TIMEOUT`: how long connecting, and then each attempt at a
    /// mail (every command of its transaction together), may take before it
    /// counts as unavailable, so a relay that greets and then stalls holds
    /// nothing for ever.
    pub timeout: Duration,
}

impl SmtpSettings {
    pub fn new(host: impl Into<String>, port: u16, tls: SmtpTls) -> SmtpSettings {
        SmtpSettings {
            host: host.into(),
            port,
            tls,
            username: None,
            password: None,
            timeout: DEFAULT_SMTP_TIMEOUT,
        }
    }

    /// Reads `SMTP_HOST` (required), `SMTP_PORT`, `SMTP_TLS`,
    /// `SMTP_USERNAME`, `SMTP_PASSWORD`, `SMTP_TIMEOUT`.
    ///
    /// The port defaults to 587, except 465 with `SMTP_TLS=tls`, which is
    /// where servers listen for TLS from the first byte.
    pub fn from_env() -> Result<SmtpSettings, MailError> {
        let host = required_env_var("SMTP_HOST", "MAILER=smtp")?;
        let tls = match env_var("SMTP_TLS") {
            Some(s) => s.parse()?,
            None => SmtpTls::StartTls,
        };
        let port = match env_var("SMTP_PORT") {
            Some(p) => p
                .trim()
                .parse::<u16>()
                .map_err(|_| MailError::Config(format!("SMTP_PORT={p:?} is not a port number")))?,
            None if tls == SmtpTls::Tls => 465,
            None => 587,
        };
        let mut settings = SmtpSettings::new(host, port, tls);
        settings.timeout = hawkeye_env::Env::process()
            .duration("SMTP_TIMEOUT", DEFAULT_SMTP_TIMEOUT)
            .map_err(|e| MailError::Config(e.to_string()))?;
        if settings.timeout.is_zero() {
            return Err(MailError::Config("SMTP_TIMEOUT must be more than 0".into()));
        }
        settings.username = env_var("SMTP_USERNAME");
        settings.password = env_var("SMTP_PASSWORD").map(Secret::new);
        if settings.password.is_some() && settings.username.is_none() {
            return Err(MailError::Config(
                "SMTP_PASSWORD is set but SMTP_USERNAME is not".into(),
            ));
        }
        Ok(settings)
    }
}

pub struct SmtpMailer {
    settings: SmtpSettings,
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

impl SmtpMailer {
    pub fn new(settings: SmtpSettings) -> Result<SmtpMailer, MailError> {
        let config = |e: lettre::transport::smtp::Error| {
            MailError::Config(format!("SMTP server {}: {e}", settings.host))
        };
        let mut builder = match settings.tls {
            SmtpTls::None => {
                AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&settings.host)
            }
            SmtpTls::StartTls => {
                AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&settings.host).tls(
                    Tls::Required(TlsParameters::new(settings.host.clone()).map_err(config)?),
                )
            }
            SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&settings.host)
                .tls(Tls::Wrapper(
                    TlsParameters::new(settings.host.clone()).map_err(config)?,
                )),
        }
        .port(settings.port)
        .timeout(Some(settings.timeout));
        if let Some(user) = &settings.username {
            let password = settings
                .password
                .as_ref()
                .map(|p| p.expose().to_string())
                .unwrap_or_default();
            builder = builder.credentials(Credentials::new(user.clone(), password));
        }
        Ok(SmtpMailer {
            transport: builder.build(),
            settings,
        })
    }

    pub fn from_env() -> Result<SmtpMailer, MailError> {
        SmtpMailer::new(SmtpSettings::from_env()?)
    }

    pub fn settings(&self) -> &SmtpSettings {
        &self.settings
    }
}

/// Written by hand so that nothing from the transport (which holds the
/// credentials) can ever reach a log line.
impl fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpMailer")
            .field("host", &self.settings.host)
            .field("port", &self.settings.port)
            .field("tls", &self.settings.tls)
            .field("username", &self.settings.username)
            .field(
                "password",
                &self.settings.password.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl SmtpMailer {
    /// Runs one SMTP exchange within `SMTP_TIMEOUT`.
    async fn bounded<T>(
        &self,
        exchange: impl std::future::Future<Output = Result<T, lettre::transport::smtp::Error>>,
    ) -> Result<Result<T, lettre::transport::smtp::Error>, MailError> {
        tokio::time::timeout(self.settings.timeout, exchange)
            .await
            .map_err(|_| {
                MailError::Unavailable(format!(
                    "{}:{}: no answer within {} (SMTP_TIMEOUT)",
                    self.settings.host,
                    self.settings.port,
                    humantime::format_duration(self.settings.timeout)
                ))
            })
    }

    /// 5xx (and a client-side refusal) will fail the same way next time;
    /// anything else (connection refused, timeout, 4xx, TLS handshake) may
    /// pass once the server is back.
    fn classify(&self, e: lettre::transport::smtp::Error) -> MailError {
        if e.is_permanent() || e.is_client() {
            MailError::Rejected(e.to_string())
        } else {
            MailError::Unavailable(format!(
                "{}:{}: {e}",
                self.settings.host, self.settings.port
            ))
        }
    }

    /// The server refused the mail for good and it has several recipients:
    /// perhaps only one of them (a mistyped cc) was refused, which fails
    /// the whole transaction. Sends the same message to each recipient in
    /// its own transaction, so the others still get it.
    ///
    /// Ok when at least one recipient got it; refused recipients are
    /// logged. A recipient that fails temporarily while others got the
    /// mail is logged and not retried (retrying the mail would send it to
    /// the others twice). When nobody got it, the error says whether a
    /// retry may help.
    async fn send_one_by_one(
        &self,
        message: &lettre::Message,
        first: lettre::transport::smtp::Error,
    ) -> Result<(), MailError> {
        let raw = message.formatted();
        let from = message.envelope().from().cloned();
        let (mut delivered, mut refused, mut temporary) = (Vec::new(), Vec::new(), Vec::new());
        for rcpt in message.envelope().to() {
            let envelope = lettre::address::Envelope::new(from.clone(), vec![rcpt.clone()])
                .map_err(|e| MailError::Build(e.to_string()))?;
            let sent = match self.bounded(self.transport.send_raw(&envelope, &raw)).await {
                Ok(sent) => sent,
                Err(timeout) => {
                    temporary.push(format!("{rcpt}: {timeout}"));
                    continue;
                }
            };
            match sent {
                Ok(_) => delivered.push(rcpt.to_string()),
                Err(e) if e.is_permanent() || e.is_client() => refused.push(format!("{rcpt}: {e}")),
                Err(e) => temporary.push(format!("{rcpt}: {e}")),
            }
        }
        if delivered.is_empty() {
            return Err(if temporary.is_empty() {
                self.classify(first)
            } else {
                MailError::Unavailable(format!(
                    "{}:{}: {}",
                    self.settings.host,
                    self.settings.port,
                    temporary.join("; ")
                ))
            });
        }
        if !refused.is_empty() {
            tracing::warn!(
                ?refused,
                ?delivered,
                "mail sent without the recipients the server refused"
            );
        }
        if !temporary.is_empty() {
            tracing::error!(
                failed = ?temporary,
                ?delivered,
                "mail not delivered to some recipients (temporary failure; not retried, so that the others do not get it twice)"
            );
        }
        Ok(())
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, mail: Mail) -> Result<(), MailError> {
        let message = build_message(&mail)?;
        match self.bounded(self.transport.send(message.clone())).await? {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() && message.envelope().to().len() > 1 => {
                self.send_one_by_one(&message, e).await
            }
            Err(e) => Err(self.classify(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_password() {
        let mut settings = SmtpSettings::new("smtp.example.com", 587, SmtpTls::StartTls);
        settings.username = Some("alerts".into());
        settings.password = Some(Secret::new("hunter2-very-secret"));
        assert!(!format!("{settings:?}").contains("hunter2"));
        let mailer = SmtpMailer::new(settings).unwrap();
        let debug = format!("{mailer:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("smtp.example.com"), "{debug}");
    }

    #[test]
    fn tls_modes_parse() {
        assert_eq!("none".parse::<SmtpTls>().unwrap(), SmtpTls::None);
        assert_eq!("STARTTLS".parse::<SmtpTls>().unwrap(), SmtpTls::StartTls);
        assert_eq!("tls".parse::<SmtpTls>().unwrap(), SmtpTls::Tls);
        assert!("ssl3".parse::<SmtpTls>().is_err());
    }
}

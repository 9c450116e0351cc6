//! Sending through an SMTP server with lettre on tokio (rustls for TLS):
//! the settings and the [`Mailer`]; each mail is one session driven
//! command by command (`session`) over a stream that bounds every
//! exchange by `SMTP_TIMEOUT` (`timed_stream`).

mod session;
mod timed_stream;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::TlsParameters;

use crate::mailer::{Mail, MailError, Mailer};
use crate::message::build_message;
use session::{Relay, Security};

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
    /// `SMTP_TIMEOUT`: how long each step of a session may take
    /// (connecting, the TLS handshake, the greeting, EHLO, STARTTLS, AUTH,
    /// MAIL, each RCPT, DATA, the message, QUIT) before the attempt counts
    /// as unavailable (retried), so a relay that stalls anywhere holds
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
        let env = hawkeye_env::Env::process();
        let env_var = |name: &str| env.get(name);
        let host = env_var("SMTP_HOST").ok_or_else(|| {
            MailError::Config("SMTP_HOST is not set (needed with MAILER=smtp)".into())
        })?;
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
        settings.timeout = env
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
    relay: Relay,
}

impl SmtpMailer {
    pub fn new(settings: SmtpSettings) -> Result<SmtpMailer, MailError> {
        let config = |e: lettre::transport::smtp::Error| {
            MailError::Config(format!("SMTP server {}: {e}", settings.host))
        };
        let security = match settings.tls {
            SmtpTls::None => Security::None,
            SmtpTls::StartTls => {
                Security::StartTls(TlsParameters::new(settings.host.clone()).map_err(config)?)
            }
            SmtpTls::Tls => Security::Wrapper(tls_config()?),
        };
        let credentials = settings.username.as_ref().map(|user| {
            let password = settings
                .password
                .as_ref()
                .map(|p| p.expose().to_string())
                .unwrap_or_default();
            Credentials::new(user.clone(), password)
        });
        Ok(SmtpMailer {
            relay: Relay {
                host: settings.host.clone(),
                port: settings.port,
                timeout: settings.timeout,
                security,
                credentials,
            },
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

/// TLS from the first byte (`SMTP_TLS=tls`): rustls with the ring provider
/// and the system's root certificates, as lettre uses for STARTTLS.
fn tls_config() -> Result<Arc<rustls::ClientConfig>, MailError> {
    let mut roots = rustls::RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(found.certs);
    if roots.is_empty() {
        return Err(MailError::Config(format!(
            "SMTP_TLS=tls: no root certificates found on this system ({:?})",
            found.errors
        )));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| MailError::Config(format!("SMTP_TLS=tls: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
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

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, mail: Mail) -> Result<(), MailError> {
        let message = build_message(&mail)?;
        self.relay
            .send(message.envelope(), &message.formatted())
            .await
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

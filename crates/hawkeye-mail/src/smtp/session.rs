//! One mail, one SMTP session, driven command by command with lettre's
//! low-level client ([`AsyncSmtpConnection`]) over a [`TimedStream`], so
//! that every step has `SMTP_TIMEOUT`: connecting, the TLS handshake, the
//! greeting, EHLO, STARTTLS, AUTH, MAIL, each RCPT, DATA, the message and
//! QUIT (`docs/alerts.md`, "Delivery").
//!
//! Recipients are given one `RCPT` each, so the relay's answer for each is
//! known: the mail goes to those accepted, and those refused for good
//! (5xx) are left out and logged, so a mistyped cc does not lose the mail
//! for everyone. When one is refused for now (4xx), nobody is sent the
//! mail and it is retried whole (sending it to the others now would send
//! it to them twice on the retry).

use std::sync::Arc;
use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt, Rset};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use lettre::transport::smtp::Error as SmtpError;
use tokio::net::TcpStream;

use super::timed_stream::TimedStream;
use crate::mailer::MailError;

/// How the session protects the connection.
#[derive(Clone)]
pub(crate) enum Security {
    None,
    /// `STARTTLS`, required.
    StartTls(TlsParameters),
    /// TLS from the first byte.
    Wrapper(Arc<rustls::ClientConfig>),
}

/// Everything needed to open a session with the relay.
#[derive(Clone)]
pub(crate) struct Relay {
    pub host: String,
    pub port: u16,
    pub timeout: Duration,
    pub security: Security,
    pub credentials: Option<Credentials>,
}

/// A failed step, and whether it was a timeout (then the session is just
/// closed: the relay is not listening to us).
struct Failed {
    error: MailError,
    timed_out: bool,
}

impl From<MailError> for Failed {
    fn from(error: MailError) -> Failed {
        Failed {
            error,
            timed_out: false,
        }
    }
}

/// What the relay said of each recipient.
#[derive(Default)]
struct Recipients {
    accepted: Vec<String>,
    refused: Vec<String>,
    temporary: Vec<String>,
}

impl Relay {
    fn name(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    fn timed_out(&self, step: &str) -> Failed {
        Failed {
            error: MailError::Unavailable(format!(
                "{}: {step}: no answer within {} (SMTP_TIMEOUT)",
                self.name(),
                humantime::format_duration(self.timeout)
            )),
            timed_out: true,
        }
    }

    /// The error of `step`: a timeout or a temporary failure may pass
    /// later; a 5xx or a client-side refusal will fail the same way.
    fn failed(&self, step: &str, e: SmtpError) -> Failed {
        if e.is_timeout() {
            return self.timed_out(step);
        }
        let what = format!("{}: {step}: {e}", self.name());
        Failed::from(if e.is_permanent() || e.is_client() {
            MailError::Rejected(what)
        } else {
            MailError::Unavailable(what)
        })
    }

    /// Connects (within the timeout), then greeting and EHLO, STARTTLS and
    /// AUTH as configured, each within the timeout.
    async fn open(&self) -> Result<AsyncSmtpConnection, Failed> {
        let tcp = tokio::time::timeout(self.timeout, TcpStream::connect((&*self.host, self.port)))
            .await
            .map_err(|_| self.timed_out("connecting"))?
            .map_err(|e| self.io_failed("connecting", e))?;
        let peer = tcp
            .peer_addr()
            .map_err(|e| self.io_failed("connecting", e))?;
        let stream: Box<dyn AsyncTokioStream> = match &self.security {
            Security::Wrapper(config) => {
                let name = rustls::pki_types::ServerName::try_from(self.host.clone())
                    .map_err(|e| MailError::Config(format!("SMTP_HOST {:?}: {e}", self.host)))?;
                let timed = TimedStream::new(tcp, peer, self.timeout);
                let tls = tokio_rustls::TlsConnector::from(config.clone())
                    .connect(name, timed)
                    .await
                    .map_err(|e| self.io_failed("TLS handshake", e))?;
                Box::new(TimedStream::new(tls, peer, self.timeout))
            }
            _ => Box::new(TimedStream::new(tcp, peer, self.timeout)),
        };
        let hello = ClientId::default();
        let mut conn = AsyncSmtpConnection::connect_with_transport(stream, &hello)
            .await
            .map_err(|e| self.failed("greeting and EHLO", e))?;
        if let Security::StartTls(params) = &self.security {
            conn.starttls(params.clone(), &hello)
                .await
                .map_err(|e| self.failed("STARTTLS", e))?;
        }
        if let Some(credentials) = &self.credentials {
            conn.auth(DEFAULT_MECHANISMS, credentials)
                .await
                .map_err(|e| self.failed("AUTH", e))?;
        }
        Ok(conn)
    }

    fn io_failed(&self, step: &str, e: std::io::Error) -> Failed {
        if e.kind() == std::io::ErrorKind::TimedOut {
            return self.timed_out(step);
        }
        Failed::from(MailError::Unavailable(format!(
            "{}: {step}: {e}",
            self.name()
        )))
    }

    /// Sends `raw` to the envelope's recipients in one session.
    pub(crate) async fn send(&self, envelope: &Envelope, raw: &[u8]) -> Result<(), MailError> {
        let mut conn = self.open().await.map_err(|f| f.error)?;
        let result = self.transaction(&mut conn, envelope, raw).await;
        // After a timeout the relay is not listening: the connection is
        // just closed. Otherwise QUIT, bounded like every command; its
        // answer changes nothing.
        if !matches!(&result, Err(f) if f.timed_out) {
            let _ = conn.quit().await;
        }
        result.map_err(|f| f.error)
    }

    async fn transaction(
        &self,
        conn: &mut AsyncSmtpConnection,
        envelope: &Envelope,
        raw: &[u8],
    ) -> Result<(), Failed> {
        let options = mail_options(conn, envelope, raw)
            .map_err(|e| MailError::Rejected(format!("{}: MAIL: {e}", self.name())))?;
        conn.command(Mail::new(envelope.from().cloned(), options))
            .await
            .map_err(|e| self.failed("MAIL", e))?;
        let rcpts = self.recipients(conn, envelope).await?;
        if !rcpts.temporary.is_empty() {
            let _ = conn.command(Rset).await;
            return Err(Failed::from(MailError::Unavailable(format!(
                "{}: RCPT refused for now: {}",
                self.name(),
                rcpts.temporary.join("; ")
            ))));
        }
        if rcpts.accepted.is_empty() {
            return Err(Failed::from(MailError::Rejected(format!(
                "{}: every recipient refused: {}",
                self.name(),
                rcpts.refused.join("; ")
            ))));
        }
        conn.command(Data)
            .await
            .map_err(|e| self.failed("DATA", e))?;
        conn.message(raw)
            .await
            .map_err(|e| self.failed("the message", e))?;
        if !rcpts.refused.is_empty() {
            tracing::warn!(
                refused = ?rcpts.refused,
                delivered = ?rcpts.accepted,
                "mail sent without the recipients the server refused"
            );
        }
        Ok(())
    }

    /// One RCPT per recipient, each answer kept.
    async fn recipients(
        &self,
        conn: &mut AsyncSmtpConnection,
        envelope: &Envelope,
    ) -> Result<Recipients, Failed> {
        let mut r = Recipients::default();
        for to in envelope.to() {
            match conn.command(Rcpt::new(to.clone(), vec![])).await {
                Ok(_) => r.accepted.push(to.to_string()),
                Err(e) if e.is_permanent() => r.refused.push(format!("{to}: {e}")),
                Err(e) if e.is_transient() => r.temporary.push(format!("{to}: {e}")),
                Err(e) => return Err(self.failed("RCPT", e)),
            }
        }
        Ok(r)
    }
}

/// SMTPUTF8 for non-ASCII addresses and 8BITMIME for a non-ASCII message,
/// when the relay offers them (as lettre's own transport does).
fn mail_options(
    conn: &AsyncSmtpConnection,
    envelope: &Envelope,
    raw: &[u8],
) -> Result<Vec<MailParameter>, &'static str> {
    let info = conn.server_info();
    let mut options = Vec::new();
    let non_ascii = envelope
        .to()
        .iter()
        .chain(envelope.from())
        .any(|a| !AsRef::<str>::as_ref(a).is_ascii());
    if non_ascii {
        if !info.supports_feature(Extension::SmtpUtfEight) {
            return Err("an address is not ASCII and the server does not offer SMTPUTF8");
        }
        options.push(MailParameter::SmtpUtfEight);
    }
    if !raw.is_ascii() {
        if !info.supports_feature(Extension::EightBitMime) {
            return Err("the message is not ASCII and the server does not offer 8BITMIME");
        }
        options.push(MailParameter::Body(MailBodyParameter::EightBitMime));
    }
    Ok(options)
}

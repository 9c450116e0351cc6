//! A mailer that writes each mail to the `tracing` log at info level: the
//! default, so a fresh install shows its alerts without any SMTP setup.

use async_trait::async_trait;

use crate::mailer::{Mail, MailError, Mailer};

#[derive(Debug, Clone, Default)]
pub struct LogMailer;

impl LogMailer {
    pub fn new() -> LogMailer {
        LogMailer
    }
}

#[async_trait]
impl Mailer for LogMailer {
    async fn send(&self, mail: Mail) -> Result<(), MailError> {
        tracing::info!(
            target: "hawkeye::mail",
            from = %mail.from,
            to = ?mail.to,
            cc = ?mail.cc,
            bcc = ?mail.bcc,
            subject = %mail.subject,
            body = %mail.body,
            "mail"
        );
        Ok(())
    }
}

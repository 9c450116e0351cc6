//! Choosing a mailer from the environment (`MAILER`, `SMTP_*`, `MAIL_DIR`).

use std::sync::Arc;

use crate::file_mailer::FileMailer;
use crate::log_mailer::LogMailer;
use crate::mailer::{MailError, Mailer};
use crate::smtp::SmtpMailer;

/// An environment variable, with an empty value treated as unset (a blank
/// line `SMTP_USERNAME=` in `.env` means "none"); see [`hawkeye_env::Env`].
pub fn env_var(name: &str) -> Option<String> {
    hawkeye_env::Env::process().get(name)
}

/// The mailer `MAILER` names: `smtp` (configured by `SMTP_*`), `log`
/// (default) or `file` (`.eml` files in `MAIL_DIR`, default `./mail`).
pub fn mailer_from_env() -> Result<Arc<dyn Mailer>, MailError> {
    let kind = env_var("MAILER").unwrap_or_else(|| "log".into());
    match kind.trim().to_ascii_lowercase().as_str() {
        "smtp" => Ok(Arc::new(SmtpMailer::from_env()?)),
        "log" => Ok(Arc::new(LogMailer::new())),
        "file" => Ok(Arc::new(FileMailer::new(
            env_var("MAIL_DIR").unwrap_or_else(|| "./mail".into()),
        )?)),
        other => Err(MailError::Config(format!(
            "MAILER={other:?} is not one of smtp, log, file"
        ))),
    }
}

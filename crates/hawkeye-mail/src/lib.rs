//! How hawkeye sends alert mail.
//!
//! - [`Mailer`]: the object-safe trait applications implement to send mail
//!   their own way (`Arc<dyn Mailer>` works).
//! - [`SmtpMailer`] (lettre on tokio, rustls), [`LogMailer`] (the `tracing`
//!   log) and [`FileMailer`] (`.eml` files): the built-in mailers, chosen from
//!   the environment by [`mailer_from_env`].
//! - [`MailQueue`]: sends apart from whoever produces the mail, retrying with
//!   exponential backoff, so a dead mail server never blocks alert evaluation.
//! - [`message`]: validation of addresses and headers, shared by the mailers
//!   and by config validation, so nothing rendered from a metric can inject a
//!   header.

pub mod env;
pub mod file_mailer;
pub mod log_mailer;
mod mailer;
pub mod message;
pub mod queue;
pub mod smtp;

pub use env::mailer_from_env;
pub use file_mailer::FileMailer;
pub use log_mailer::LogMailer;
pub use mailer::{Mail, MailError, Mailer};
pub use message::{build_message, check_header_text, parse_mailbox};
pub use queue::{MailQueue, MailSender, QueueConfig, QueueStats, DEFAULT_MAX_AGE};
pub use smtp::{SmtpMailer, SmtpSettings, SmtpTls};

//! A mailer that writes each mail as an `.eml` file (RFC 5322, the same bytes
//! SMTP would carry) into a directory: for development and for tests that
//! want to read what would have been sent.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;

use crate::mailer::{Mail, MailError, Mailer};
use crate::message::build_message;

#[derive(Debug)]
pub struct FileMailer {
    dir: PathBuf,
    counter: AtomicU64,
}

impl FileMailer {
    /// Creates `dir` if needed, so a bad path is reported at startup rather
    /// than at the first alert.
    pub fn new(dir: impl Into<PathBuf>) -> Result<FileMailer, MailError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(|source| MailError::Io {
            path: dir.clone(),
            source,
        })?;
        Ok(FileMailer {
            dir,
            counter: AtomicU64::new(0),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[async_trait]
impl Mailer for FileMailer {
    async fn send(&self, mail: Mail) -> Result<(), MailError> {
        let message = build_message(&mail)?;
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        // Time first so that a directory listing sorts in sending order; pid
        // and counter keep names unique across agents sharing the directory.
        let name = format!("{millis:013}-{}-{n:06}.eml", std::process::id());
        let path = self.dir.join(&name);
        let tmp = self.dir.join(format!(".{name}.tmp"));
        // Write then rename, so a reader never sees half a mail.
        let bytes = message.formatted();
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| MailError::Io { path, source }
        };
        tokio::fs::write(&tmp, bytes).await.map_err(io(&tmp))?;
        tokio::fs::rename(&tmp, &path).await.map_err(io(&path))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn writes_one_eml_file_per_mail() {
        let dir = tempfile::tempdir().unwrap();
        let mailer = FileMailer::new(dir.path().join("mail")).unwrap();
        let mail = Mail {
            subject: "disk full".into(),
            body: "disk is 99% full".into(),
            from: "hawkeye@localhost".into(),
            to: vec!["oncall@example.com".into()],
            cc: vec![],
            bcc: vec![],
            message_id: None,
            date: None,
        };
        mailer.send(mail.clone()).await.unwrap();
        mailer.send(mail).await.unwrap();
        let mut files: Vec<_> = std::fs::read_dir(mailer.dir())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        assert_eq!(files.len(), 2);
        assert!(files
            .iter()
            .all(|f| f.extension().is_some_and(|e| e == "eml")));
        let text = std::fs::read_to_string(&files[0]).unwrap();
        assert!(text.contains("Subject: disk full\r\n"), "{text}");
        assert!(text.contains("disk is 99% full"), "{text}");
    }

    #[tokio::test]
    async fn an_invalid_mail_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mailer = FileMailer::new(dir.path()).unwrap();
        let mail = Mail {
            subject: "x\r\nBcc: evil@example.com".into(),
            body: String::new(),
            from: "hawkeye@localhost".into(),
            to: vec!["oncall@example.com".into()],
            cc: vec![],
            bcc: vec![],
            message_id: None,
            date: None,
        };
        assert!(mailer.send(mail).await.is_err());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}

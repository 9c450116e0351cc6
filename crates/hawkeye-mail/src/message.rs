//! Turning a [`Mail`] into an RFC 5322 message, refusing anything that could
//! smuggle a header in.
//!
//! lettre already encodes header values, but a subject or address rendered
//! from a template is checked here too: any CR, LF or other control character
//! is an error rather than something to escape, so a metric value or a tag
//! can never add a `Bcc:` line, and config validation can use the same checks
//! to reject a bad address before the agent starts.

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::Message;

use crate::mailer::{Mail, MailError};

/// Longest subject accepted; longer ones are almost certainly a template
/// rendering something it should not.
pub const MAX_SUBJECT_LEN: usize = 998;

/// Checks text that goes into a header: no control characters at all (tab
/// excepted), so no CR/LF to start a new header line.
pub fn check_header_text(header: &'static str, text: &str) -> Result<(), MailError> {
    if let Some(c) = text.chars().find(|c| c.is_control() && *c != '\t') {
        return Err(MailError::InvalidHeader {
            header,
            reason: format!("contains the control character {c:?}"),
        });
    }
    if text.len() > MAX_SUBJECT_LEN {
        return Err(MailError::InvalidHeader {
            header,
            reason: format!("longer than {MAX_SUBJECT_LEN} bytes"),
        });
    }
    Ok(())
}

/// Parses `a@example.com` or `Name <a@example.com>`, refusing control
/// characters before lettre sees the text.
pub fn parse_mailbox(address: &str) -> Result<Mailbox, MailError> {
    let invalid = |reason: String| MailError::InvalidAddress {
        address: address.to_string(),
        reason,
    };
    if address.trim().is_empty() {
        return Err(invalid("empty".into()));
    }
    if let Some(c) = address.chars().find(|c| c.is_control()) {
        return Err(invalid(format!("contains the control character {c:?}")));
    }
    address
        .trim()
        .parse::<Mailbox>()
        .map_err(|e| invalid(e.to_string()))
}

/// Builds the message for `mail`: plain text UTF-8 body, a Date and a
/// Message-ID (the mail's own, else a new one), `Bcc` kept only in the
/// envelope.
pub fn build_message(mail: &Mail) -> Result<Message, MailError> {
    check_header_text("subject", &mail.subject)?;
    if let Some(id) = &mail.message_id {
        check_header_text("Message-ID", id)?;
        if id.contains(['<', '>', ' ']) || !id.contains('@') {
            return Err(MailError::InvalidHeader {
                header: "Message-ID",
                reason: format!("{id:?} is not of the form left@right"),
            });
        }
    }
    if mail.to.is_empty() && mail.cc.is_empty() && mail.bcc.is_empty() {
        return Err(MailError::NoRecipients);
    }
    let mut builder = Message::builder()
        .from(parse_mailbox(&mail.from)?)
        .subject(mail.subject.as_str())
        .header(ContentType::TEXT_PLAIN)
        .message_id(mail.message_id.as_ref().map(|id| format!("<{id}>")));
    if let Some(date) = mail.date {
        builder = builder.date(date);
    }
    for to in &mail.to {
        builder = builder.to(parse_mailbox(to)?);
    }
    for cc in &mail.cc {
        builder = builder.cc(parse_mailbox(cc)?);
    }
    for bcc in &mail.bcc {
        builder = builder.bcc(parse_mailbox(bcc)?);
    }
    builder
        .body(mail.body.clone())
        .map_err(|e| MailError::Build(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail() -> Mail {
        Mail {
            subject: "4xx errors exceeded".into(),
            body: "Threshold breached. 5\n".into(),
            from: "hawkeye@localhost".into(),
            to: vec!["oncall@example.com".into()],
            cc: vec!["Team Lead <lead@example.com>".into()],
            bcc: vec!["audit@example.com".into()],
            message_id: None,
            date: None,
        }
    }

    #[test]
    fn builds_a_message_with_every_recipient_in_the_envelope() {
        let message = build_message(&mail()).unwrap();
        let text = String::from_utf8(message.formatted()).unwrap();
        assert!(text.contains("Subject: 4xx errors exceeded\r\n"), "{text}");
        assert!(text.contains("To: oncall@example.com\r\n"), "{text}");
        assert!(
            !text.contains("audit@example.com"),
            "bcc leaked into headers: {text}"
        );
        let envelope: Vec<String> = message
            .envelope()
            .to()
            .iter()
            .map(|a| a.to_string())
            .collect();
        assert_eq!(
            envelope,
            [
                "oncall@example.com",
                "lead@example.com",
                "audit@example.com"
            ]
        );
    }

    #[test]
    fn a_given_message_id_is_kept() {
        let mut m = mail();
        m.message_id = Some("abc.firing@hawkeye".into());
        let text = String::from_utf8(build_message(&m).unwrap().formatted()).unwrap();
        assert!(
            text.contains("Message-ID: <abc.firing@hawkeye>\r\n"),
            "{text}"
        );
        m.message_id = Some("x>\r\nBcc: e@x".into());
        assert!(build_message(&m).is_err());
    }

    #[test]
    fn header_injection_is_refused() {
        for subject in [
            "x\r\nBcc: evil@example.com",
            "x\nBcc: evil@example.com",
            "x\rY",
            "a\0b",
        ] {
            let mut m = mail();
            m.subject = subject.into();
            assert!(
                matches!(build_message(&m), Err(MailError::InvalidHeader { .. })),
                "{subject:?}"
            );
        }
        for address in [
            "a@example.com\r\nBcc: evil@example.com",
            "a@example.com\nX: y",
            "not an address",
            "",
            "@example.com",
        ] {
            let mut m = mail();
            m.to = vec![address.into()];
            assert!(
                matches!(build_message(&m), Err(MailError::InvalidAddress { .. })),
                "{address:?}"
            );
        }
    }

    #[test]
    fn no_recipients_is_an_error() {
        let mut m = mail();
        m.to.clear();
        m.cc.clear();
        m.bcc.clear();
        assert!(matches!(build_message(&m), Err(MailError::NoRecipients)));
    }
}

//! SmtpMailer and the queue against a real SMTP server (aiosmtpd).

use std::sync::Arc;
use std::time::{Duration, Instant};

use hawkeye_mail::{Mail, MailQueue, Mailer, QueueConfig, SmtpMailer, SmtpSettings, SmtpTls};
use hawkeye_testkit::smtp_server::SmtpServer;

const DEADLINE: Duration = Duration::from_secs(30);

fn mail(subject: &str) -> Mail {
    Mail {
        subject: subject.into(),
        body: "Threshold breached for first degree sla. 5\nsecond line".into(),
        from: "hawkeye@localhost".into(),
        to: vec!["oncall@example.com".into()],
        cc: vec!["Lead <lead@example.com>".into()],
        bcc: vec!["audit@example.com".into()],
        message_id: None,
        date: None,
    }
}

fn mailer(port: u16) -> SmtpMailer {
    SmtpMailer::new(SmtpSettings::new("127.0.0.1", port, SmtpTls::None)).unwrap()
}

#[tokio::test]
async fn smtp_mailer_delivers_to_a_real_server() {
    let server = SmtpServer::start();
    mailer(server.port())
        .send(mail("4xx errors exceeded"))
        .await
        .unwrap();
    let received = server.wait_for(1, DEADLINE);
    assert_eq!(received.len(), 1);
    let m = &received[0];
    assert_eq!(m.subject(), "4xx errors exceeded");
    assert!(
        m.body()
            .contains("Threshold breached for first degree sla. 5"),
        "{}",
        m.raw
    );
    assert_eq!(
        m.rcpt_to(),
        [
            "oncall@example.com",
            "lead@example.com",
            "audit@example.com"
        ]
    );
    assert!(
        m.header("Bcc").is_none(),
        "Bcc must stay in the envelope: {}",
        m.raw
    );
}

#[tokio::test]
async fn an_unreachable_server_is_a_retryable_error() {
    let err = mailer(SmtpServer::unused_port())
        .send(mail("x"))
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
}

#[tokio::test]
async fn the_queue_retries_until_the_smtp_server_comes_back() {
    let port = SmtpServer::unused_port();
    let config = QueueConfig {
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(200),
        ..QueueConfig::default()
    };
    let queue = MailQueue::start(Arc::new(mailer(port)), config);
    assert!(queue.sender().send(mail("sent during an outage")));

    // The queue must have failed at least twice before the server exists.
    let until = Instant::now() + DEADLINE;
    while queue.stats().retries < 2 {
        assert!(Instant::now() < until, "the queue never tried to send");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(queue.stats().sent, 0);

    let server = SmtpServer::start_on(port);
    let received = tokio::task::spawn_blocking(move || {
        let r = server.wait_for(1, DEADLINE);
        (r, server)
    })
    .await
    .unwrap()
    .0;
    assert_eq!(
        received.len(),
        1,
        "the queued mail arrives once the server is up"
    );
    assert_eq!(received[0].subject(), "sent during an outage");
    let stats = queue.shutdown(Duration::from_secs(5)).await;
    assert_eq!(stats.sent, 1);
    assert_eq!(stats.dropped, 0);
}

/// A scripted SMTP server: refuses (550) every recipient containing
/// "typo", and records the recipients of each mail it accepts. A mail is
/// recorded before the 250 that ends DATA, so once `send` returns, what
/// the server got is in `accepted`.
struct RefusingServer {
    port: u16,
    accepted: Arc<std::sync::Mutex<Vec<Vec<String>>>>,
}

impl RefusingServer {
    async fn start() -> RefusingServer {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(std::sync::Mutex::new(Vec::new()));
        let record = accepted.clone();
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let record = record.clone();
                tokio::spawn(async move {
                    let (r, mut w) = conn.into_split();
                    let mut lines = BufReader::new(r).lines();
                    w.write_all(b"220 test ESMTP\r\n").await.unwrap();
                    let mut rcpts = Vec::new();
                    while let Ok(Some(line)) = lines.next_line().await {
                        let upper = line.to_ascii_uppercase();
                        let reply: &[u8] = if upper.starts_with("RCPT TO:") {
                            if line.contains("typo") {
                                b"550 5.1.1 no such user\r\n"
                            } else if line.contains("full") {
                                b"452 4.2.2 mailbox full\r\n"
                            } else {
                                rcpts.push(line[8..].trim().trim_matches(['<', '>']).to_string());
                                b"250 ok\r\n"
                            }
                        } else if upper.starts_with("DATA") {
                            w.write_all(b"354 go on\r\n").await.unwrap();
                            while let Ok(Some(l)) = lines.next_line().await {
                                if l == "." {
                                    break;
                                }
                            }
                            record.lock().unwrap().push(std::mem::take(&mut rcpts));
                            b"250 queued\r\n"
                        } else if upper.starts_with("QUIT") {
                            let _ = w.write_all(b"221 bye\r\n").await;
                            break;
                        } else {
                            if upper.starts_with("RSET") || upper.starts_with("MAIL") {
                                rcpts.clear();
                            }
                            b"250 ok\r\n"
                        };
                        if w.write_all(reply).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        RefusingServer { port, accepted }
    }
}

#[tokio::test]
async fn one_refused_recipient_does_not_lose_the_mail_for_the_others() {
    let server = RefusingServer::start().await;
    let mut m = mail("4xx errors exceeded");
    m.cc = vec!["Lead <lead@typo.example.com>".into()];
    mailer(server.port).send(m).await.unwrap();
    let accepted = server.accepted.lock().unwrap().clone();
    assert_eq!(
        accepted,
        [vec!["oncall@example.com", "audit@example.com"]],
        "one transaction to every valid recipient, the refused one left out"
    );

    // Everybody refused: a permanent error, not retried.
    let mut m = mail("nobody");
    m.to = vec!["a@typo.example.com".into()];
    m.cc = vec!["b@typo.example.com".into()];
    m.bcc = vec![];
    let err = mailer(server.port).send(m).await.unwrap_err();
    assert!(!err.is_retryable(), "{err}");
    assert_eq!(server.accepted.lock().unwrap().len(), 1);
}

/// A recipient refused for now (4xx): nobody gets the mail now and it is
/// retried whole, so that the others do not get it twice.
#[tokio::test]
async fn a_recipient_refused_for_now_makes_the_whole_mail_wait() {
    let server = RefusingServer::start().await;
    let mut m = mail("later");
    m.cc = vec!["lead@full.example.com".into()];
    let err = mailer(server.port).send(m).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(err.to_string().contains("lead@full.example.com"), "{err}");
    assert!(server.accepted.lock().unwrap().is_empty());
}

/// A relay that stops answering at each step of the dialogue in turn:
/// every attempt ends at SMTP_TIMEOUT with a retryable error naming the
/// step (the test's own deadline only guards against a hang).
#[tokio::test]
async fn a_relay_stalling_at_any_step_times_out() {
    use hawkeye_testkit::smtp_server::{Stall, StallingRelay};
    for (stall, tls, step) in [
        (Stall::Greeting, SmtpTls::None, "greeting and EHLO"),
        (Stall::Greeting, SmtpTls::Tls, "TLS handshake"),
        (Stall::AfterGreeting, SmtpTls::None, "greeting and EHLO"),
        (Stall::At("STARTTLS"), SmtpTls::StartTls, "STARTTLS"),
        (Stall::At("MAIL"), SmtpTls::None, "MAIL"),
        (Stall::At("RCPT"), SmtpTls::None, "RCPT"),
        (Stall::At("DATA"), SmtpTls::None, "DATA"),
        (Stall::MidData, SmtpTls::None, "the message"),
    ] {
        let relay = StallingRelay::stalling(stall);
        let mut settings = SmtpSettings::new(relay.host(), relay.port(), tls);
        settings.timeout = Duration::from_millis(300);
        let err = tokio::time::timeout(
            DEADLINE,
            SmtpMailer::new(settings).unwrap().send(mail("stalled")),
        )
        .await
        .expect("SMTP_TIMEOUT ends the attempt")
        .unwrap_err();
        assert!(err.is_retryable(), "{stall:?}: {err}");
        assert!(
            err.to_string()
                .contains(&format!("{step}: no answer within 300ms (SMTP_TIMEOUT)")),
            "{stall:?}: {err}"
        );
        assert_eq!(relay.stalled(), 1, "{stall:?}");
    }
}

/// The relay accepted the mail and then stalls on QUIT: the mail was sent
/// (reporting a failure would send it again), and QUIT is bounded too.
#[tokio::test]
async fn a_relay_stalling_on_quit_has_the_mail() {
    use hawkeye_testkit::smtp_server::{Stall, StallingRelay};
    let relay = StallingRelay::stalling(Stall::At("QUIT"));
    let mut settings = SmtpSettings::new(relay.host(), relay.port(), SmtpTls::None);
    settings.timeout = Duration::from_millis(300);
    tokio::time::timeout(
        DEADLINE,
        SmtpMailer::new(settings).unwrap().send(mail("sent")),
    )
    .await
    .expect("QUIT is bounded")
    .unwrap();
    assert_eq!(relay.stalled(), 1);
}

//! Lines refused where nobody is answered (the Unix datagram socket, UDP,
//! TCP, plain lines on the stream socket) are logged at warn level with
//! the listener, the reason and a sample of the line, at most once per
//! listener per HAWKEYE_REJECT_LOG_INTERVAL: a flood of bad lines makes one
//! log line per listener, not one per line.

mod common;

use std::io::Write;
use std::time::Duration;

use common::process::ServerProcess;
use common::Client;
use hawkeye_testkit::RedisServer;
use serde_json::json;

const FLOOD: usize = 2000;

fn free_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_bad_lines_is_one_warning_per_listener() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let dgram = dir.path().join("statsd.sock");
    let udp = format!("127.0.0.1:{}", free_port());
    let tcp_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let tcp = format!("127.0.0.1:{tcp_port}");
    let server = ServerProcess::start(
        &redis,
        &[
            ("HAWKEYE_DGRAM_SOCKET", dgram.to_str().unwrap()),
            ("HAWKEYE_UDP_ADDR", &udp),
            ("HAWKEYE_TCP_ADDR", &tcp),
            // Longer than the test: every refusal after the first is counted.
            ("HAWKEYE_REJECT_LOG_INTERVAL", "1h"),
        ],
    );
    let bad = |tag: &str| format!("bad.{tag}:1|x\n").repeat(FLOOD);
    // Each listener: a flood of lines of an unknown type, one good line.
    let sender = std::os::unix::net::UnixDatagram::unbound().unwrap();
    sender.send_to(bad("dgram").as_bytes(), &dgram).unwrap();
    let udp_sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for _ in 0..FLOOD / 500 {
        udp_sender
            .send_to("bad.udp:1|x\n".repeat(500).as_bytes(), &udp)
            .unwrap();
    }
    let mut tcp_client = std::net::TcpStream::connect(&tcp).unwrap();
    tcp_client.write_all(bad("tcp").as_bytes()).unwrap();
    let mut plain = std::os::unix::net::UnixStream::connect(server.socket()).unwrap();
    plain.write_all(bad("plain").as_bytes()).unwrap();
    // And a line that is not UTF-8: refused and counted too.
    plain.write_all(b"bad.bytes:\xff|c\n").unwrap();
    drop((tcp_client, plain));

    let mut c = Client::connect(&server.socket()).await;
    let want = (4 * FLOOD + 1) as u64;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let s = c.call("server.stats", json!(null)).await["result"].clone();
        if s["lines_rejected"].as_u64().unwrap() >= want {
            assert_eq!(s["lines_rejected"], json!(want), "{s}");
            break;
        }
        // UDP may lose datagrams; the kernel says so.
        assert_eq!(s["udp_drops"], json!(0), "{s}");
        assert!(tokio::time::Instant::now() < deadline, "{s}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for (listener, sample) in [
        ("datagram", "bad.dgram:1|x"),
        ("udp", "bad.udp:1|x"),
        ("tcp", "bad.tcp:1|x"),
        ("unix-stream", "bad.plain:1|x"),
    ] {
        let line = server
            .log
            .wait_for(Duration::from_secs(30), |l| {
                l.contains("metric line rejected")
                    && l.contains(&format!("listener=\"{listener}\""))
            })
            .unwrap_or_else(|| panic!("no warning for {listener}:\n{}", server.log.text()));
        assert!(line.contains("WARN"), "{line}");
        assert!(
            line.contains("reason=unknown type \"x\""),
            "the reason: {line}"
        );
        assert!(line.contains(&format!("sample=\"{sample}\"")), "{line}");
        assert!(line.contains("suppressed=0"), "{line}");
    }
    let warnings = server
        .log
        .text()
        .lines()
        .filter(|l| l.contains("metric line rejected"))
        .count();
    assert_eq!(warnings, 4, "{}", server.log.text());
}

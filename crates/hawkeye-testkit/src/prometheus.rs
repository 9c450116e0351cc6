//! A real `prometheus` (Debian's package) scraping one target every second,
//! on a port of its choosing, its data in a temporary directory, and a plain HTTP GET to read pages
//! and Prometheus's HTTP API.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

/// How long prometheus may take to say it is ready.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

pub struct Prometheus {
    _dir: TempDir,
    child: Child,
    addr: SocketAddr,
}

impl Prometheus {
    /// Starts prometheus scraping `target` (`host:port`, path `/metrics`)
    /// every second, and waits until it serves requests.
    pub fn scraping(target: SocketAddr) -> Prometheus {
        let dir = tempfile::Builder::new()
            .prefix("hawkeye-prometheus")
            .tempdir()
            .expect("a temporary directory for prometheus");
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: hawkeye\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .expect("write prometheus.yml");
        let mut child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg("--web.listen-address=127.0.0.1:0")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start prometheus (apt-get install prometheus)");
        let stderr = child.stderr.take().expect("prometheus stderr");
        // `msg="Listening on" address=127.0.0.1:34657`: the port it chose.
        let addr = crate::ready_line::wait_for_line(stderr, READY_TIMEOUT, |line| {
            let (_, rest) = line.split_once("msg=\"Listening on\"")?;
            rest.trim()
                .strip_prefix("address=")?
                .parse::<SocketAddr>()
                .ok()
        });
        let Some(addr) = addr else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("prometheus did not say where it listens within {READY_TIMEOUT:?}");
        };
        // Listening is not ready yet: /-/ready answers 200 once it is.
        crate::progress::eventually("prometheus to be ready", READY_TIMEOUT, || {
            matches!(http_get(addr, "/-/ready"), Ok((200, _)))
        });
        Prometheus {
            _dir: dir,
            child,
            addr,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// An instant query through the HTTP API (`/api/v1/query`): the body.
    pub fn query(&self, promql: &str) -> String {
        let path = format!("/api/v1/query?query={}", percent_encode(promql));
        let (status, body) = http_get(self.addr, &path).expect("ask prometheus");
        assert_eq!(status, 200, "{body}");
        body
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `GET path` over HTTP/1.0: the status and the body.
pub fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok((status, body.to_string()))
}

//! A real SMTP server for tests: Python's aiosmtpd (`pip install aiosmtpd`)
//! on 127.0.0.1, writing every message it accepts as a file into a temporary
//! directory. Tests read those files to see exactly what reached the server.
//!
//! Each file is the message as received, preceded by three headers the
//! server adds: `X-Received-At` (unix seconds with microseconds, when the
//! server had the whole message), `X-MailFrom` and `X-RcptTo` (the SMTP
//! envelope, which is where `Bcc` recipients are visible).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

mod stalling;
pub use stalling::{Stall, StallingRelay};

const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The server program. It prints `READY <port>` once listening, writes each
/// message atomically (temporary name, then rename) so a reader never sees
/// half a file, and exits when its stdin closes, so it dies with the test
/// process even if that process is killed.
const SERVER_PY: &str = r#"
import asyncio, itertools, os, sys, threading, time
from aiosmtpd.smtp import SMTP

host, port, outdir = sys.argv[1], int(sys.argv[2]), sys.argv[3]
counter = itertools.count()

class Handler:
    async def handle_DATA(self, server, session, envelope):
        received = time.time()
        n = next(counter)
        head = "X-Received-At: %.6f\r\nX-MailFrom: %s\r\nX-RcptTo: %s\r\n" % (
            received, envelope.mail_from, ", ".join(envelope.rcpt_tos))
        data = envelope.original_content or envelope.content
        if isinstance(data, str):
            data = data.encode("utf-8")
        name = "%013d-%d-%06d.eml" % (int(received * 1000), os.getpid(), n)
        tmp = os.path.join(outdir, "." + name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(head.encode("utf-8") + data)
        os.rename(tmp, os.path.join(outdir, name))
        return "250 Message accepted"

def exit_when_parent_goes():
    sys.stdin.read()
    os._exit(0)

async def main():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(Handler(), hostname="hawkeye-test-smtp"), host, port)
    print("READY %d" % server.sockets[0].getsockname()[1], flush=True)
    threading.Thread(target=exit_when_parent_goes, daemon=True).start()
    await server.serve_forever()

asyncio.run(main())
"#;

/// One message as the SMTP server received it.
#[derive(Debug, Clone)]
pub struct ReceivedMail {
    pub path: PathBuf,
    pub raw: String,
}

impl ReceivedMail {
    fn head(&self) -> &str {
        self.raw
            .split_once("\r\n\r\n")
            .or_else(|| self.raw.split_once("\n\n"))
            .map(|(h, _)| h)
            .unwrap_or(&self.raw)
    }

    /// The value of header `name` (case-insensitive), folded lines joined.
    pub fn header(&self, name: &str) -> Option<String> {
        let mut value: Option<String> = None;
        let mut collecting = false;
        for line in self.head().lines() {
            if collecting && line.starts_with([' ', '\t']) {
                if let Some(v) = value.as_mut() {
                    v.push(' ');
                    v.push_str(line.trim());
                }
                continue;
            }
            if value.is_some() {
                break;
            }
            collecting = false;
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case(name) {
                    value = Some(v.trim().to_string());
                    collecting = true;
                }
            }
        }
        value
    }

    pub fn subject(&self) -> String {
        self.header("Subject").unwrap_or_default()
    }

    /// The envelope recipients (To, Cc and Bcc).
    pub fn rcpt_to(&self) -> Vec<String> {
        self.header("X-RcptTo")
            .map(|v| {
                v.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// When the server had the whole message (unix seconds).
    pub fn received_at(&self) -> Option<f64> {
        self.header("X-Received-At").and_then(|v| v.parse().ok())
    }

    /// The body, decoded from quoted-printable or base64 when the message
    /// says so (lettre picks the encoding from the text).
    pub fn body(&self) -> String {
        let body = self
            .raw
            .split_once("\r\n\r\n")
            .or_else(|| self.raw.split_once("\n\n"))
            .map(|(_, b)| b)
            .unwrap_or("");
        match self
            .header("Content-Transfer-Encoding")
            .map(|e| e.to_ascii_lowercase())
            .as_deref()
        {
            Some("quoted-printable") => decode_quoted_printable(body),
            Some("base64") => decode_base64(body),
            _ => body.replace("\r\n", "\n"),
        }
    }
}

fn decode_quoted_printable(s: &str) -> String {
    let s = s.replace("\r\n", "\n").replace("=\n", "");
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
            if let Ok(b) = u8::from_str_radix(hex, 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn decode_base64(s: &str) -> String {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for v in s.bytes().filter_map(value) {
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub struct SmtpServer {
    dir: TempDir,
    port: u16,
    child: Option<Child>,
    _stdin: Option<ChildStdin>,
}

impl SmtpServer {
    /// Starts a server on a free port; panics with the reason if it cannot.
    pub fn start() -> SmtpServer {
        SmtpServer::start_on(0)
    }

    /// Starts a server on `port` (0: any free port). Used to bring a server
    /// up on a port a mailer has been failing to reach.
    pub fn start_on(port: u16) -> SmtpServer {
        let dir = tempfile::Builder::new()
            .prefix("hawkeye-smtp")
            .tempdir()
            .expect("create a temporary directory for the SMTP server");
        let mut server = SmtpServer {
            dir,
            port,
            child: None,
            _stdin: None,
        };
        server.spawn();
        server
    }

    /// A port nothing listens on right now (the OS picked it as free), for
    /// a mailer to fail against before a server is started on it.
    pub fn unused_port() -> u16 {
        TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("bind a free local port")
    }

    pub fn host(&self) -> &'static str {
        "127.0.0.1"
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Where the received messages are written.
    pub fn maildir(&self) -> &Path {
        self.dir.path()
    }

    /// Every message received so far, oldest first.
    pub fn messages(&self) -> Vec<ReceivedMail> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|e| e == "eml"))
                    .filter(|p| {
                        !p.file_name()
                            .is_some_and(|n| n.to_string_lossy().starts_with('.'))
                    })
                    .collect()
            })
            .unwrap_or_default();
        paths.sort();
        paths
            .into_iter()
            .filter_map(|path| {
                let raw = std::fs::read_to_string(&path).ok()?;
                Some(ReceivedMail { path, raw })
            })
            .collect()
    }

    /// Waits until at least `n` messages arrived or `deadline` passed, and
    /// returns what arrived. Polls the directory: the files are the signal.
    pub fn wait_for(&self, n: usize, deadline: Duration) -> Vec<ReceivedMail> {
        let until = Instant::now() + deadline;
        loop {
            let messages = self.messages();
            if messages.len() >= n || Instant::now() >= until {
                return messages;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn stop(&mut self) {
        self._stdin = None;
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn spawn(&mut self) {
        let mut child = Command::new("python3")
            .arg("-c")
            .arg(SERVER_PY)
            .arg("127.0.0.1")
            .arg(self.port.to_string())
            .arg(self.dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start python3 (the SMTP test server needs python3 with aiosmtpd)");
        let stdout = child.stdout.take().expect("smtp server stdout");
        let ready = crate::wait_for_line(stdout, READY_TIMEOUT, |line| {
            line.strip_prefix("READY ")
                .map(|port| port.trim().parse::<u16>().ok())
        });
        match ready {
            Some(Some(port)) => self.port = port,
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the SMTP test server did not start within {READY_TIMEOUT:?} \
                     (is aiosmtpd installed? pip install aiosmtpd)"
                );
            }
        }
        self._stdin = child.stdin.take();
        self.child = Some(child);
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_transfer_encodings() {
        assert_eq!(decode_quoted_printable("a=3Db=\r\nc =C3=A9"), "a=bc é");
        assert_eq!(decode_base64("aGVsbG8gd29ybGQ=\r\n"), "hello world");
    }

    #[test]
    fn headers_unfold() {
        let m = ReceivedMail {
            path: PathBuf::new(),
            raw: "X-RcptTo: a@x, b@x\r\nSubject: one\r\n two\r\nTo: a@x\r\n\r\nbody\r\n".into(),
        };
        assert_eq!(m.subject(), "one two");
        assert_eq!(m.rcpt_to(), ["a@x", "b@x"]);
        assert_eq!(m.body(), "body\n");
    }
}

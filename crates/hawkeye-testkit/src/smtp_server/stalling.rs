//! A relay that stops answering at a chosen point of the SMTP dialogue:
//! what a stuck mail server looks like to a client. Until that point it
//! speaks just enough SMTP (greeting, EHLO, MAIL, RCPT, DATA, QUIT) for a
//! client to get there; from then on it keeps the connection open and
//! never answers again. It counts the connections it took and those that
//! reached the stall, and frees its port when dropped, so that a real
//! [`super::SmtpServer`] can be started on it.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Where the relay stops answering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stall {
    /// Accepts the connection and never greets.
    Greeting,
    /// Greets (`220`) and answers nothing after.
    AfterGreeting,
    /// Answers every command until the first one starting with this verb
    /// (`"RCPT"`, `"DATA"`, `"QUIT"`…), which it never answers.
    At(&'static str),
    /// Answers `DATA` with `354`, reads the whole message, and never
    /// answers its end: the client cannot know whether it was accepted.
    MidData,
}

pub struct StallingRelay {
    port: u16,
    greeted: Arc<AtomicUsize>,
    stalled: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

struct Counters {
    greeted: Arc<AtomicUsize>,
    stalled: Arc<AtomicUsize>,
    /// Connections kept open, never answered again.
    held: Mutex<Vec<TcpStream>>,
}

impl StallingRelay {
    /// Greets, then never answers (see [`Stall::AfterGreeting`]).
    pub fn start() -> StallingRelay {
        StallingRelay::stalling(Stall::AfterGreeting)
    }

    pub fn stalling(stall: Stall) -> StallingRelay {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a local port");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let port = listener.local_addr().expect("local address").port();
        let counters = Arc::new(Counters {
            greeted: Arc::new(AtomicUsize::new(0)),
            stalled: Arc::new(AtomicUsize::new(0)),
            held: Mutex::new(Vec::new()),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let (c, s) = (counters.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let c = c.clone();
                        std::thread::spawn(move || converse(conn, stall, &c));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
            // Dropping the held connections closes them.
            c.held.lock().map(|mut h| h.clear()).ok();
        });
        StallingRelay {
            port,
            greeted: counters.greeted.clone(),
            stalled: counters.stalled.clone(),
            stop,
            thread: Some(thread),
        }
    }

    pub fn host(&self) -> &'static str {
        "127.0.0.1"
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Connections greeted so far.
    pub fn greeted(&self) -> usize {
        self.greeted.load(Ordering::SeqCst)
    }

    /// Connections that reached the stall so far.
    pub fn stalled(&self) -> usize {
        self.stalled.load(Ordering::SeqCst)
    }

    /// Waits until at least `n` connections were greeted or `deadline` passed.
    pub fn wait_greeted(&self, n: usize, deadline: Duration) -> usize {
        wait(|| self.greeted(), n, deadline)
    }

    /// Waits until at least `n` connections reached the stall or `deadline`
    /// passed.
    pub fn wait_stalled(&self, n: usize, deadline: Duration) -> usize {
        wait(|| self.stalled(), n, deadline)
    }
}

fn wait(count: impl Fn() -> usize, n: usize, deadline: Duration) -> usize {
    let until = Instant::now() + deadline;
    while count() < n && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    count()
}

/// One connection: answers until the stall, then holds it.
fn converse(mut conn: TcpStream, stall: Stall, c: &Counters) {
    let hold = |conn: TcpStream| {
        c.stalled.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut held) = c.held.lock() {
            held.push(conn);
        }
    };
    if stall == Stall::Greeting {
        return hold(conn);
    }
    if conn.write_all(b"220 stalling relay ready\r\n").is_err() {
        return;
    }
    c.greeted.fetch_add(1, Ordering::SeqCst);
    if stall == Stall::AfterGreeting {
        return hold(conn);
    }
    let Ok(reader) = conn.try_clone() else { return };
    let mut lines = BufReader::new(reader).lines();
    while let Some(Ok(line)) = lines.next() {
        let verb = line
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        if matches!(stall, Stall::At(at) if verb.starts_with(at)) {
            return hold(conn);
        }
        let reply: &[u8] = match verb.as_str() {
            // STARTTLS is offered so that a client requiring it gets to
            // ask (the relay never answers it past `Stall::At("STARTTLS")`).
            "EHLO" => b"250-stalling relay\r\n250-STARTTLS\r\n250 8BITMIME\r\n",
            "DATA" => {
                if conn.write_all(b"354 go on\r\n").is_err() {
                    return;
                }
                // The message, up to its final dot.
                for l in lines.by_ref() {
                    if l.map(|l| l == ".").unwrap_or(true) {
                        break;
                    }
                }
                if stall == Stall::MidData {
                    return hold(conn);
                }
                b"250 queued\r\n"
            }
            "QUIT" => {
                let _ = conn.write_all(b"221 bye\r\n");
                return;
            }
            _ => b"250 ok\r\n",
        };
        if conn.write_all(reply).is_err() {
            return;
        }
    }
}

impl Drop for StallingRelay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

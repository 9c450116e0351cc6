//! The lockstep lane: JSON-RPC connections of the stream socket, served by
//! one thread of their own over epoll (mio) for the call that makes most of
//! a Go client's traffic: one `Metric.Handle` event per call, answered
//! before the next is sent. Such a call costs the kernel a `recv` and a
//! `send`; on a tokio task, the readiness, waker and scheduling
//! bookkeeping around them cost the server more than the call's own work
//! (README, "Run H"). Here a readable socket is read, its calls answered
//! and the answers written, with nothing in between.
//!
//! The lane answers only what it can answer at once and in full: a read
//! that came back short (the socket is drained), made of whole lines that
//! are each Go's call shape, no longer than `HAWKEYE_MAX_LINE_BYTES`, whose
//! answers the socket takes in one write. Anything else hands the
//! connection over to a task on the runtime ([`crate::connection`]), with
//! what it read and did not answer and what it could not write, and the
//! task serves it from then on under every bound of docs/protocol.md
//! ("Limits"): a line split across reads, a batch or any other method, a
//! client that does not read, plain statsd lines, and the registry's
//! requests (closed to admit a client, the input budget, shutdown). So the
//! lane holds nothing between two reads: no buffer, no pending bytes,
//! nothing for a line timeout to watch.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Release};
use std::sync::{Arc, Mutex};
use std::task::{Context, Wake, Waker};

use hawkeye_protocol::jsonrpc;
use mio::net::UnixStream;
use mio::{Events, Interest, Poll, Token};
use tokio::sync::mpsc::UnboundedSender;
use tracing::{debug, error};

use crate::connection::{first_byte, goodbye_line, Held};
use crate::pace::YIELD_EVERY;
use crate::registry::CloseRequest;
use crate::rpc;
use crate::shared::Shared;
use crate::stream_input::{End, Open};

const WAKE: Token = Token(usize::MAX);

/// A connection the lane gives to the runtime, with what it holds.
pub(crate) struct HandOver {
    pub stream: StdUnixStream,
    pub open: Open,
    pub held: Held,
}

/// The lane's thread, as the accepting task sees it.
pub(crate) struct Lane {
    inbox: Arc<Inbox>,
}

/// What other threads tell the lane.
struct Inbox {
    arrivals: Mutex<Arrivals>,
    /// The registry asked something of a connection of the lane.
    asked: AtomicBool,
    /// Hand every connection over and stop.
    closing: AtomicBool,
    waker: mio::Waker,
}

/// Connections accepted for the lane and not yet taken by its thread.
#[derive(Default)]
struct Arrivals {
    list: Vec<(StdUnixStream, Open)>,
    /// The thread takes no more: it stopped, or failed.
    stopped: bool,
}

/// The registry wakes a connection through its `AtomicWaker`: for the
/// lane's connections, that is this.
impl Wake for Inbox {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.asked.store(true, Release);
        self.alarm();
    }
}

impl Inbox {
    fn alarm(&self) {
        if let Err(e) = self.waker.wake() {
            error!(error = %e, "cannot wake the lockstep lane");
        }
    }
}

impl Lane {
    /// Starts the lane's thread; what it hands over goes to `handed`.
    pub fn start(shared: Arc<Shared>, handed: UnboundedSender<HandOver>) -> io::Result<Lane> {
        let poll = Poll::new()?;
        let inbox = Arc::new(Inbox {
            arrivals: Mutex::new(Arrivals::default()),
            asked: AtomicBool::new(false),
            closing: AtomicBool::new(false),
            waker: mio::Waker::new(poll.registry(), WAKE)?,
        });
        let worker = Worker {
            poll,
            waker: Waker::from(inbox.clone()),
            inbox: inbox.clone(),
            shared,
            handed,
            conns: Vec::new(),
            free: Vec::new(),
            read: vec![0; YIELD_EVERY],
            write: Vec::new(),
        };
        // Not joined: the server waits for its hand-over channel to close.
        std::thread::Builder::new()
            .name("hawkeye-lane".into())
            .spawn(move || worker.run())?;
        Ok(Lane { inbox })
    }

    /// Serves a new connection on the lane; gives it back when the lane's
    /// thread takes no more (it stops only after [`Lane::finish`], unless
    /// it failed).
    pub fn adopt(
        &self,
        stream: tokio::net::UnixStream,
        open: Open,
    ) -> Result<(), (tokio::net::UnixStream, Open)> {
        // Under the lock that the thread takes to stop: a connection is
        // either taken by it or given back, never left in the list.
        let mut arrivals = lock(&self.inbox.arrivals);
        if arrivals.stopped {
            return Err((stream, open));
        }
        match stream.into_std() {
            Ok(stream) => {
                arrivals.list.push((stream, open));
                drop(arrivals);
                self.inbox.alarm();
            }
            // The connection closes; `open` takes it out of the registry.
            Err(e) => debug!(error = %e, "cannot move a connection to the lockstep lane"),
        }
        Ok(())
    }

    /// Tells the lane to answer each connection's last read and stop (as
    /// dropping it does); its hand-over channel closes once it has.
    pub fn finish(self) {}
}

impl Drop for Lane {
    fn drop(&mut self) {
        self.inbox.closing.store(true, Release);
        self.inbox.alarm();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Nothing under this lock can panic half-way.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// One connection on the lane.
struct Conn {
    stream: UnixStream,
    open: Open,
    /// Its first bytes were JSON.
    json: bool,
}

/// The lane's thread. However it ends (a panic included), it takes no
/// more connections: `adopt` gives them back to be served on the runtime.
struct Worker {
    poll: Poll,
    inbox: Arc<Inbox>,
    /// Registered with every connection's entry in the registry.
    waker: Waker,
    shared: Arc<Shared>,
    handed: UnboundedSender<HandOver>,
    /// By token; `free` lists the empty slots.
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    /// One read at a time, for every connection: a read that fills it is
    /// not lockstep and goes to the runtime.
    read: Vec<u8>,
    write: Vec<u8>,
}

impl Drop for Worker {
    fn drop(&mut self) {
        let mut arrivals = lock(&self.inbox.arrivals);
        arrivals.stopped = true;
        // Left only if the thread panicked: they close.
        arrivals.list.clear();
    }
}

impl Worker {
    fn run(mut self) {
        let mut events = Events::with_capacity(256);
        let failed = loop {
            if let Err(e) = self.poll.poll(&mut events, None) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                error!(error = %e, "the lockstep lane cannot wait for its sockets; handing its connections to the runtime");
                break true;
            }
            let mut woken = false;
            for event in events.iter() {
                match event.token() {
                    WAKE => woken = true,
                    Token(i) => self.serve_one(i, event.is_read_closed()),
                }
            }
            if woken {
                self.take_arrivals();
                if self.inbox.asked.swap(false, AcqRel) {
                    self.answer_asked();
                }
                if self.inbox.closing.load(Acquire) {
                    break false;
                }
            }
        };
        lock(&self.inbox.arrivals).stopped = true;
        self.take_arrivals();
        for i in 0..self.conns.len() {
            if failed {
                // The runtime serves them from now on, as it serves every
                // connection accepted after this.
                self.hand_over(i, &[], &[]);
            } else {
                // The server shuts down, or is gone: each connection's
                // last read is answered, and it closes.
                self.last_read(i);
            }
        }
    }

    /// Registers the connections accepted since the last look.
    fn take_arrivals(&mut self) {
        let arrivals = std::mem::take(&mut lock(&self.inbox.arrivals).list);
        for (stream, open) in arrivals {
            let mut stream = UnixStream::from_std(stream);
            let slot = self.free.pop().unwrap_or_else(|| {
                self.conns.push(None);
                self.conns.len() - 1
            });
            if let Err(e) =
                self.poll
                    .registry()
                    .register(&mut stream, Token(slot), Interest::READABLE)
            {
                debug!(error = %e, "cannot register a connection on the lockstep lane");
                self.free.push(slot);
                continue;
            }
            let mut cx = Context::from_waker(&self.waker);
            let asked = open.entry().poll_asked(&mut cx, true).is_ready();
            self.conns[slot] = Some(Conn {
                stream,
                open,
                json: false,
            });
            if asked {
                // Answered with the others' requests, once all are in.
                self.inbox.asked.store(true, Release);
            }
        }
    }

    /// Does what the registry asked of connections: closed to admit a
    /// client or for the input budget, each is told why; at shutdown,
    /// each has its last read answered.
    fn answer_asked(&mut self) {
        for i in 0..self.conns.len() {
            let Some(conn) = self.conns[i].as_ref() else {
                continue;
            };
            let entry = conn.open.entry();
            if entry.evicted() {
                self.say_goodbye(i, End::Evicted);
            } else {
                match entry.close_request() {
                    Some(CloseRequest::InputBudget) => self.say_goodbye(i, End::InputBudget),
                    Some(CloseRequest::Shutdown) => self.last_read(i),
                    None => {}
                }
            }
        }
    }

    /// Closes connection `i`, telling its client why. Best effort, as on
    /// the runtime: a client that does not read is not waited for.
    fn say_goodbye(&mut self, i: usize, end: End) {
        if let Some(conn) = self.take(i) {
            if let Some(line) = goodbye_line(&self.shared, end) {
                let _ = (&conn.stream).write(&line);
            }
        }
    }

    /// At shutdown: what has arrived is read once and answered (handed
    /// over if the lane cannot answer it: its task answers and closes),
    /// and the connection closes. What the client sends after is not
    /// answered; it sends it again to the next server.
    fn last_read(&mut self, i: usize) {
        self.serve_one(i, false);
        self.close(i);
    }

    /// Serves a readable connection; a panic drops that connection only,
    /// as it would end only its task on the runtime.
    ///
    /// `read_closed`: the client has closed its side, its last calls
    /// perhaps in the same event. No later event comes for what is left
    /// to read (the end), so the lane reads on until it gets there.
    fn serve_one(&mut self, i: usize, read_closed: bool) {
        let served = catch_unwind(AssertUnwindSafe(|| while self.serve(i) && read_closed {}));
        if served.is_err() {
            error!("a connection of the lockstep lane panicked; closing it");
            // The read buffer may have been out of its place.
            if self.read.len() != YIELD_EVERY {
                self.read = vec![0; YIELD_EVERY];
            }
            self.close(i);
        }
    }

    /// Reads connection `i` once and answers what came; whether it is
    /// still on the lane with its read answered (not when the read found
    /// nothing, the end, or something handed over).
    fn serve(&mut self, i: usize) -> bool {
        let Some(conn) = self.conns.get_mut(i).and_then(Option::as_mut) else {
            return false;
        };
        let n = loop {
            match (&conn.stream).read(&mut self.read) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(e) => {
                    debug!(error = %e, "connection read failed");
                    self.close(i);
                    return false;
                }
            }
        };
        if n == 0 {
            // The client closed, and the lane holds nothing of it.
            self.close(i);
            return false;
        }
        let read = std::mem::take(&mut self.read);
        let kept = self.answer(i, &read[..n], n == read.len());
        self.read = read;
        kept
    }

    /// Answers what a read brought, or hands the connection over; whether
    /// it is still on the lane.
    fn answer(&mut self, i: usize, input: &[u8], filled: bool) -> bool {
        let Some(conn) = self.conns[i].as_mut() else {
            return false;
        };
        let json = conn.json || matches!(first_byte(input), Some(b'{' | b'['));
        if !conn.open.entry().begin_work() {
            // Closed to admit a client, as this read came: told why (a
            // JSON-RPC client), and what it read is not answered: the
            // client sends it again.
            if json {
                self.say_goodbye(i, End::Evicted);
            } else {
                self.close(i);
            }
            return false;
        }
        if !json {
            // Plain statsd lines, or only white space yet: the task tells
            // which.
            self.hand_over(i, input, &[]);
            return false;
        }
        conn.json = true;
        if filled {
            // More is waiting, which is not lockstep.
            self.hand_over(i, input, &[]);
            return false;
        }
        self.write.clear();
        let answered = answer_calls(&self.shared, input, &mut self.write);
        let written = match (&conn.stream).write(&self.write) {
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) =>
            {
                0
            }
            Err(e) => {
                debug!(error = %e, "connection write failed");
                self.close(i);
                return false;
            }
        };
        if answered < input.len() || written < self.write.len() {
            let output = std::mem::take(&mut self.write);
            self.hand_over(i, &input[answered..], &output[written..]);
            self.write = output;
            return false;
        }
        conn.open.entry().end_work(&self.shared.registry);
        true
    }

    /// Takes connection `i` off the lane, if it is there.
    fn take(&mut self, i: usize) -> Option<Conn> {
        let mut conn = self.conns.get_mut(i)?.take()?;
        self.free.push(i);
        if let Err(e) = self.poll.registry().deregister(&mut conn.stream) {
            debug!(error = %e, "cannot deregister a connection from the lockstep lane");
        }
        Some(conn)
    }

    /// Closes connection `i`; its `Open` takes it out of the registry.
    fn close(&mut self, i: usize) {
        drop(self.take(i));
    }

    /// Gives connection `i` to a task on the runtime, with the input it
    /// read and did not answer and the answers it did not write.
    fn hand_over(&mut self, i: usize, input: &[u8], output: &[u8]) {
        let Some(conn) = self.take(i) else {
            return;
        };
        let handed = HandOver {
            stream: conn.stream.into(),
            open: conn.open,
            held: Held {
                input: input.to_vec(),
                output: output.to_vec(),
                json: conn.json,
            },
        };
        // Refused only when the server is gone: the connection closes.
        let _ = self.handed.send(handed);
    }
}

/// Answers the whole lines at the start of `input` that are Go's call, in
/// order, until one is not or the answers reach `HAWKEYE_MAX_OUTPUT_BYTES`;
/// returns the bytes of input answered.
fn answer_calls(shared: &Shared, input: &[u8], out: &mut Vec<u8>) -> usize {
    let config = &shared.config;
    let mut start = 0;
    while out.len() < config.max_output_bytes {
        let Some(pos) = memchr::memchr(b'\n', &input[start..]) else {
            break;
        };
        let line = &input[start..start + pos];
        if line.len() > config.max_line_bytes {
            break;
        }
        let Some(call) = jsonrpc::go_handle_call(line) else {
            break;
        };
        rpc::answer_go_call(shared, &call, out);
        start += pos + 1;
    }
    start
}

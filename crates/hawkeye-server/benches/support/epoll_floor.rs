//! The floor a call cannot go below: a single-threaded epoll loop that
//! answers each request line with `{"error":null,"result":0,"id":<id>}` and
//! parses nothing but the id. Its CPU per call is what the kernel's recv and
//! send and one epoll wake-up cost, measured in the same run as hawkeye.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A running floor server, on its own thread.
pub struct EpollFloor {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    tid: i32,
}

impl EpollFloor {
    pub fn start(path: &Path) -> EpollFloor {
        let listener = UnixListener::bind(path).expect("bind the floor server's socket");
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let (tid_tx, tid_rx) = std::sync::mpsc::channel();
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            // SAFETY: gettid has no preconditions.
            tid_tx.send(unsafe { libc::gettid() }).unwrap();
            serve(listener, &flag);
        });
        let tid = tid_rx.recv().unwrap();
        EpollFloor {
            stop,
            thread: Some(thread),
            tid,
        }
    }

    /// The server thread's id, to count its system calls.
    pub fn tid(&self) -> i32 {
        self.tid
    }

    /// CPU time the server's thread has used so far, in nanoseconds.
    pub fn cpu_ns(&self) -> u64 {
        task_cpu_ns(&format!("/proc/self/task/{}/schedstat", self.tid))
    }
}

impl Drop for EpollFloor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Serves on `path` on this thread until the process is killed: the floor
/// in a process of its own, as hawkeye is (its peer, the benchmark's
/// client, then lives in another address space, as hawkeye's does).
pub fn serve_in_this_process(path: &Path) {
    let listener = UnixListener::bind(path).expect("bind the floor server's socket");
    listener.set_nonblocking(true).unwrap();
    println!("floor listening");
    serve(listener, &AtomicBool::new(false));
}

/// The first field of a task's schedstat: nanoseconds on a CPU.
pub fn task_cpu_ns(schedstat: &str) -> u64 {
    std::fs::read_to_string(schedstat)
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

struct Epoll(i32);

impl Epoll {
    fn new() -> Epoll {
        // SAFETY: plain syscall; the result is checked.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        assert!(fd >= 0, "epoll_create1");
        Epoll(fd)
    }

    fn add(&self, fd: i32) {
        let mut event = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: fd as u64,
        };
        // SAFETY: `event` is valid for the call; the result is checked.
        let rc = unsafe { libc::epoll_ctl(self.0, libc::EPOLL_CTL_ADD, fd, &mut event) };
        assert_eq!(rc, 0, "epoll_ctl");
    }

    /// Ready file descriptors, waiting at most 100 ms.
    fn wait<'e>(&self, events: &'e mut [libc::epoll_event]) -> impl Iterator<Item = i32> + 'e {
        // SAFETY: `events` is a valid, writable buffer of its length.
        let n = unsafe { libc::epoll_wait(self.0, events.as_mut_ptr(), events.len() as i32, 100) };
        events[..n.max(0) as usize].iter().map(|e| e.u64 as i32)
    }
}

impl Drop for Epoll {
    fn drop(&mut self) {
        // SAFETY: the fd is owned by this value.
        unsafe { libc::close(self.0) };
    }
}

fn serve(listener: UnixListener, stop: &AtomicBool) {
    let epoll = Epoll::new();
    let listen_fd = listener.as_raw_fd();
    epoll.add(listen_fd);
    let mut conns: HashMap<i32, (UnixStream, Vec<u8>)> = HashMap::new();
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 64];
    let mut out = Vec::with_capacity(4096);
    let ready: &mut Vec<i32> = &mut Vec::new();
    while !stop.load(Ordering::Relaxed) {
        ready.clear();
        ready.extend(epoll.wait(&mut events));
        for &fd in ready.iter() {
            if fd == listen_fd {
                while let Ok((stream, _)) = listener.accept() {
                    stream.set_nonblocking(true).unwrap();
                    epoll.add(stream.as_raw_fd());
                    conns.insert(stream.as_raw_fd(), (stream, Vec::with_capacity(4096)));
                }
                continue;
            }
            let Some((stream, input)) = conns.get_mut(&fd) else {
                continue;
            };
            if !answer(stream, input, &mut out) {
                conns.remove(&fd);
            }
        }
    }
}

/// Reads what arrived and answers its complete lines; `false` at the end.
fn answer(stream: &mut UnixStream, input: &mut Vec<u8>, out: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 4096];
    match stream.read(&mut chunk) {
        Ok(0) => return false,
        Ok(n) => input.extend_from_slice(&chunk[..n]),
        Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
        Err(_) => return false,
    }
    out.clear();
    let mut start = 0;
    while let Some(pos) = memchr::memchr(b'\n', &input[start..]) {
        let line = &input[start..start + pos];
        out.extend_from_slice(b"{\"error\":null,\"result\":0,\"id\":");
        out.extend_from_slice(id_of(line));
        out.extend_from_slice(b"}\n");
        start += pos + 1;
    }
    input.drain(..start);
    // Lockstep clients read every answer before writing again: a short
    // write does not happen at these sizes, and is not waited for.
    stream.write_all(out).is_ok()
}

/// The digits after `"id":`, or `null`.
fn id_of(line: &[u8]) -> &[u8] {
    let Some(at) = memchr::memmem::find(line, b"\"id\":") else {
        return b"null";
    };
    let rest = &line[at + 5..];
    let end = rest
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(rest.len());
    &rest[..end]
}

//! One stream connection: newline-delimited JSON-RPC.
//!
//! Every complete line in the read buffer is answered before the responses
//! are written in one go, so a client that pipelines many calls (as Go's
//! net/rpc client does with concurrent callers) costs one read and one write
//! per buffer, not per call. A connection holds no buffer while idle, so
//! thousands of idle connections cost little memory.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use hawkeye_protocol::jsonrpc::{self, code, Dialect, RpcError};
use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;
use tokio::sync::watch;
use tracing::debug;

use crate::shared::Shared;

/// How much is read at a time.
const READ_CHUNK: usize = 64 * 1024;

/// Counts the connection while it lives.
struct Open<'a>(&'a Shared);

impl<'a> Open<'a> {
    fn new(shared: &'a Shared) -> Self {
        shared.stats.connections.fetch_add(1, Relaxed);
        shared.stats.connections_total.fetch_add(1, Relaxed);
        Open(shared)
    }
}

impl Drop for Open<'_> {
    fn drop(&mut self) {
        self.0.stats.connections.fetch_sub(1, Relaxed);
    }
}

pub(crate) async fn serve(
    shared: Arc<Shared>,
    mut stream: UnixStream,
    mut shutdown: watch::Receiver<bool>,
) {
    let _open = Open::new(&shared);
    let max_line = shared.config.max_line_bytes;
    let mut input: Vec<u8> = Vec::new();
    let mut output: Vec<u8> = Vec::new();
    // Where the search for the next newline resumes.
    let mut scanned = 0;
    // Set at shutdown: answer what the client has already sent, then close.
    let mut closing = false;
    loop {
        if !closing {
            tokio::select! {
                ready = stream.readable() => if ready.is_err() { return },
                _ = shutdown.changed() => closing = true,
            }
        }
        if input.capacity() - input.len() < READ_CHUNK / 4 {
            input.reserve(READ_CHUNK);
        }
        let eof = match stream.try_read_buf(&mut input) {
            Ok(0) => true,
            Ok(_) => false,
            // Nothing more has arrived: at shutdown, that is all there is.
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => closing,
            Err(e) => {
                debug!(error = %e, "connection read failed");
                return;
            }
        };
        let mut start = 0;
        let mut too_long = false;
        while let Some(pos) = memchr::memchr(b'\n', &input[scanned..]) {
            let end = scanned + pos;
            if end - start > max_line {
                too_long = true;
                break;
            }
            shared.answer_line(&input[start..end], &mut output).await;
            start = end + 1;
            scanned = start;
        }
        if eof && !too_long && start < input.len() && input.len() - start <= max_line {
            // A last line without its newline is still a line.
            let end = input.len();
            shared.answer_line(&input[start..end], &mut output).await;
            start = end;
        }
        input.drain(..start);
        scanned = input.len();
        too_long |= input.len() > max_line;
        if too_long {
            let e = RpcError::new(
                code::LINE_TOO_LONG,
                format!("request line longer than {max_line} bytes (HAWKEYE_MAX_LINE_BYTES); closing the connection"),
            );
            jsonrpc::write_response::<()>(&mut output, Dialect::V2, None, &Err(e));
        }
        if !output.is_empty() {
            // A client that never reads blocks here; shutdown bounds that
            // wait (HAWKEYE_SHUTDOWN_TIMEOUT) and then drops the connection.
            if stream.write_all(&output).await.is_err() {
                return;
            }
            output.clear();
        }
        if eof || too_long {
            return;
        }
        if input.is_empty() && input.capacity() > 4 * READ_CHUNK {
            // A burst left a large buffer behind; don't keep it while idle.
            input = Vec::new();
            output = Vec::new();
        }
    }
}

/// Tells a connection over the limit why it is closed.
pub(crate) async fn refuse(mut stream: UnixStream, max: usize) {
    let e = RpcError::new(
        code::TOO_MANY_CONNECTIONS,
        format!("too many connections (HAWKEYE_MAX_CONNECTIONS is {max}); try again later"),
    );
    let mut out = Vec::new();
    jsonrpc::write_response::<()>(&mut out, Dialect::V2, None, &Err(e));
    let _ = stream.write_all(&out).await;
}

//! Where a connection's answers go, and the bound on them.
//!
//! Answers are appended to a buffer that is written to the socket at the end
//! of each read, and also as soon as it passes `HAWKEYE_MAX_OUTPUT_BYTES`,
//! in the middle of a batch or of a long list of rejected lines if need be.
//! While that write waits for the client to read, nothing more is read from
//! the connection: a client that never reads holds at most the bound, plus
//! its request, never a whole amplified answer (docs/protocol.md, "Limits").

use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;

use crate::pace::Pacer;
use crate::registry::Entry;
use crate::shared::Shared;
use crate::stats::Stats;

/// Why a connection must end now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Gone {
    /// The client closed, or writing to it failed.
    Client,
    /// The server closed it: it held the most of the pending budget.
    InputBudget,
}

pub(crate) struct Output<'a> {
    pub shared: &'a Shared,
    stream: &'a mut UnixStream,
    buf: &'a mut Vec<u8>,
    pacer: &'a mut Pacer,
    entry: &'a Entry,
    /// Bytes of input this connection holds while its answers wait.
    held: usize,
    /// Written before the next answer: `[` or `,` inside a batch.
    separator: Option<u8>,
}

impl<'a> Output<'a> {
    pub fn new(
        shared: &'a Shared,
        stream: &'a mut UnixStream,
        buf: &'a mut Vec<u8>,
        pacer: &'a mut Pacer,
        entry: &'a Entry,
        held: usize,
    ) -> Output<'a> {
        Output {
            shared,
            stream,
            buf,
            pacer,
            entry,
            held,
            separator: None,
        }
    }

    /// The buffer, to append (part of) an answer to.
    pub fn buf(&mut self) -> &mut Vec<u8> {
        if let Some(c) = self.separator.take() {
            self.buf.push(c);
        }
        self.buf
    }

    /// Puts `c` before the next answer, if any is written.
    pub fn separate_next(&mut self, c: u8) {
        self.separator = Some(c);
    }

    pub fn clear_separator(&mut self) {
        self.separator = None;
    }

    /// Whether the separator set by [`Output::separate_next`] was used.
    pub fn separator_used(&self) -> bool {
        self.separator.is_none()
    }

    /// Between two pieces of work that took `bytes` of input: writes the
    /// answers out when they pass the bound, and lets other tasks run when
    /// enough work was done.
    pub async fn progress(&mut self, bytes: usize) -> Result<(), Gone> {
        if self.buf.len() >= self.shared.config.max_output_bytes {
            self.write_out().await?;
        }
        self.pacer.spent(bytes).await;
        Ok(())
    }

    /// Writes every answer held. If the client is not reading, this waits
    /// (and the connection reads nothing meanwhile); the server may close
    /// it then to keep within the pending budget.
    pub async fn write_out(&mut self) -> Result<(), Gone> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let written = match self.stream.try_write(self.buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => 0,
            Err(_) => return Err(Gone::Client),
        };
        if written < self.buf.len() {
            // The client is not reading as fast as it is answered.
            Stats::bump(&self.shared.stats.output_waits);
            let registry = &self.shared.registry;
            registry.set_pending(self.entry, self.held, &self.shared.stats);
            tokio::select! {
                r = self.stream.write_all(&self.buf[written..]) => r.map_err(|_| Gone::Client)?,
                () = closed_for_budget(self.entry) => return Err(Gone::InputBudget),
            }
        }
        self.buf.clear();
        Ok(())
    }
}

/// Returns once the server asks this connection to close for the budget
/// (or evicts it, which it does only to an idle one: never while it writes).
pub(crate) async fn closed_for_budget(entry: &Entry) {
    std::future::poll_fn(|cx| entry.poll_asked(cx, false)).await
}

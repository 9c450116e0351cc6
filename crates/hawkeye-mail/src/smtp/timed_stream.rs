//! A connection to the relay on which every exchange has `SMTP_TIMEOUT`.
//!
//! An SMTP dialogue is a series of exchanges: the client writes (a command,
//! the message) and reads the reply. The deadline starts when the stream
//! is made (the greeting must arrive within it) and starts again at the
//! first write after a read (the next command), so the greeting, EHLO,
//! STARTTLS and each flight of its handshake, AUTH, MAIL, each RCPT, DATA,
//! the message with its final reply, and QUIT are each bounded. A read or
//! write still pending at the deadline fails with `TimedOut`, which lettre
//! reports as a timeout (`Error::is_timeout`). The timer lives in the
//! stream because lettre reads the greeting and the EHLO reply in one call
//! (`AsyncSmtpConnection::connect_with_transport`), and the STARTTLS
//! handshake inside `starttls`: a timeout around each call could not bound
//! each exchange.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use lettre::transport::smtp::client::AsyncTokioStream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

pub(crate) struct TimedStream<S> {
    inner: S,
    peer: SocketAddr,
    timeout: Duration,
    deadline: Pin<Box<Sleep>>,
    /// The last operation was a read: the next write starts an exchange.
    after_read: bool,
}

impl<S> TimedStream<S> {
    pub(crate) fn new(inner: S, peer: SocketAddr, timeout: Duration) -> TimedStream<S> {
        TimedStream {
            inner,
            peer,
            timeout,
            deadline: Box::pin(tokio::time::sleep(timeout)),
            after_read: false,
        }
    }

    /// `poll` is the inner stream's answer: while it is pending, the
    /// deadline decides whether to wait on.
    fn bounded<T>(
        &mut self,
        cx: &mut Context<'_>,
        poll: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        match poll {
            Poll::Pending if self.deadline.as_mut().poll(cx).is_ready() => {
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "no answer within {} (SMTP_TIMEOUT)",
                        humantime::format_duration(self.timeout)
                    ),
                )))
            }
            other => other,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for TimedStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        this.after_read = true;
        let poll = Pin::new(&mut this.inner).poll_read(cx, buf);
        this.bounded(cx, poll)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for TimedStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if std::mem::take(&mut this.after_read) {
            let next = Instant::now() + this.timeout;
            this.deadline.as_mut().reset(next);
        }
        let poll = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.bounded(cx, poll)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let poll = Pin::new(&mut this.inner).poll_flush(cx);
        this.bounded(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let poll = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.bounded(cx, poll)
    }
}

impl<S> fmt::Debug for TimedStream<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimedStream")
            .field("peer", &self.peer)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl<S> AsyncTokioStream for TimedStream<S>
where
    S: AsyncRead + AsyncWrite + Send + Sync + Unpin,
{
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.peer)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// Each write after a read starts a new deadline: a peer that answers
    /// every exchange in time is never cut off, however long the dialogue.
    #[tokio::test(start_paused = true)]
    async fn each_exchange_has_its_own_deadline() {
        let (client, mut server) = tokio::io::duplex(64);
        let peer: SocketAddr = "127.0.0.1:25".parse().unwrap();
        let mut stream = TimedStream::new(client, peer, Duration::from_secs(10));
        let mut buf = [0u8; 4];
        for _ in 0..5 {
            tokio::time::sleep(Duration::from_secs(8)).await;
            server.write_all(b"250\n").await.unwrap();
            stream.read_exact(&mut buf).await.unwrap();
            stream.write_all(b"NOOP").await.unwrap();
            server.read_exact(&mut buf).await.unwrap();
        }
        // Now the peer does not answer: the read fails at the deadline.
        let started = Instant::now();
        let err = stream.read_exact(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(10));
    }
}

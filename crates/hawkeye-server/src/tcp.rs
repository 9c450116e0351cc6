//! The statsd TCP listener (`HAWKEYE_TCP_ADDR`, off unless set): some
//! statsd clients (PyPI's `statsd` `TCPStatsClient`, hot-shots with
//! `protocol: 'tcp'`) write newline-delimited lines over TCP. Each
//! connection is a plain-line stream ([`crate::plain_stream`]), admitted
//! like a connection of the stream socket: both count against
//! `HAWKEYE_MAX_CONNECTIONS` (docs/protocol.md, "TCP").

use std::io;
use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};

use crate::ServerError;

pub(crate) fn bind(addr: SocketAddr) -> Result<TcpListener, ServerError> {
    let bind_error = |source| ServerError::Tcp { addr, source };
    let listener = std::net::TcpListener::bind(addr).map_err(bind_error)?;
    listener.set_nonblocking(true).map_err(bind_error)?;
    TcpListener::from_std(listener).map_err(bind_error)
}

/// The next connection, or never when there is no listener.
pub(crate) async fn accept(listener: Option<&TcpListener>) -> io::Result<TcpStream> {
    match listener {
        Some(listener) => listener.accept().await.map(|(stream, _)| stream),
        None => std::future::pending().await,
    }
}

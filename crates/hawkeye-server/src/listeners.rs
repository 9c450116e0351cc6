//! Binding every socket the configuration asks for, all or none: when one
//! cannot be bound, the socket files already made are removed again.

use tokio::net::{TcpListener, UdpSocket, UnixDatagram, UnixListener};
use tracing::info;

use crate::config::ServerConfig;
use crate::{socket_file, tcp, udp, ServerError};

pub(crate) struct Listeners {
    pub stream: UnixListener,
    pub datagram: Option<UnixDatagram>,
    /// With its inode, to read the kernel's drops on it.
    pub udp: Option<(UdpSocket, u64)>,
    pub tcp: Option<TcpListener>,
    /// `/metrics` (`HAWKEYE_HTTP_ADDR`).
    pub http: Option<TcpListener>,
}

pub(crate) fn bind(config: &ServerConfig) -> Result<Listeners, ServerError> {
    let stream = socket_file::bind_stream(&config.socket_path, config.socket_mode)?;
    let cleanup = || {
        socket_file::remove(&config.socket_path);
        if let Some(path) = &config.dgram_socket_path {
            socket_file::remove(path);
        }
    };
    let datagram = match &config.dgram_socket_path {
        Some(path) => match socket_file::bind_datagram(path, config.socket_mode) {
            Ok(socket) => Some(socket),
            Err(e) => {
                // Not the datagram path: it may be another server's.
                socket_file::remove(&config.socket_path);
                return Err(e);
            }
        },
        None => None,
    };
    let others = || -> Result<_, ServerError> {
        let udp = match config.udp_addr {
            Some(addr) => {
                let (socket, granted, inode) = udp::bind(addr, config.udp_rcvbuf)?;
                info!(%addr, receive_buffer = granted, "statsd UDP listener");
                Some((socket, inode))
            }
            None => None,
        };
        let tcp = match config.tcp_addr {
            Some(addr) => {
                let listener = tcp::bind(addr)?;
                let bound = listener.local_addr().unwrap_or(addr);
                info!(addr = %bound, "statsd TCP listener");
                Some(listener)
            }
            None => None,
        };
        let http = match config.http_addr {
            Some(addr) => {
                let listener = tcp::bind(addr).map_err(|e| match e {
                    ServerError::Tcp { addr, source } => ServerError::Http { addr, source },
                    other => other,
                })?;
                let bound = listener.local_addr().unwrap_or(addr);
                info!(addr = %bound, "HTTP listener: /metrics");
                Some(listener)
            }
            None => None,
        };
        Ok((udp, tcp, http))
    };
    match others() {
        Ok((udp, tcp, http)) => Ok(Listeners {
            stream,
            datagram,
            udp,
            tcp,
            http,
        }),
        Err(e) => {
            cleanup();
            Err(e)
        }
    }
}

//! The statsd UDP listener (`HAWKEYE_UDP_ADDR`, off unless set): most statsd
//! clients send to UDP 8125 by default. Datagrams are read as on the Unix
//! datagram socket (see datagram.rs); what this file adds is the socket: its
//! receive buffer, and the datagrams the kernel dropped because that buffer
//! was full, which only the kernel knows (docs/protocol.md, "UDP").

use std::net::SocketAddr;
use std::os::fd::AsRawFd;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;

use crate::ServerError;

/// Binds `addr` with a receive buffer of `rcvbuf` bytes asked for (the
/// kernel caps it at `net.core.rmem_max`); returns the socket, the buffer
/// the kernel granted, and the socket's inode (to find its drops).
pub(crate) fn bind(
    addr: SocketAddr,
    rcvbuf: usize,
) -> Result<(UdpSocket, usize, u64), ServerError> {
    let bind_error = |source| ServerError::Udp { addr, source };
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))
        .map_err(bind_error)?;
    // Asked for, not required: an unprivileged process gets at most
    // rmem_max, and the effective size is logged.
    let _ = socket.set_recv_buffer_size(rcvbuf);
    socket.set_nonblocking(true).map_err(bind_error)?;
    socket.bind(&addr.into()).map_err(bind_error)?;
    let granted = socket.recv_buffer_size().unwrap_or(0);
    let std_socket: std::net::UdpSocket = socket.into();
    let inode = inode_of(&std_socket);
    let socket = UdpSocket::from_std(std_socket).map_err(bind_error)?;
    Ok((socket, granted, inode))
}

fn inode_of(socket: &std::net::UdpSocket) -> u64 {
    let mut stat = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: fstat on a descriptor this function's caller owns, writing
    // into a buffer of the right type.
    let rc = unsafe { libc::fstat(socket.as_raw_fd(), stat.as_mut_ptr()) };
    if rc != 0 {
        return 0;
    }
    // SAFETY: fstat succeeded, so it filled the buffer.
    unsafe { stat.assume_init() }.st_ino
}

/// Datagrams the kernel dropped on the socket with this inode because its
/// receive buffer was full: the `drops` column of /proc/net/udp (or udp6).
/// `None` when the socket is not found (not Linux, or already closed).
pub(crate) fn kernel_drops(inode: u64) -> Option<u64> {
    ["/proc/net/udp", "/proc/net/udp6"]
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .find_map(|table| drops_in(&table, inode))
}

/// The drops of the row for `inode` in a /proc/net/udp table.
fn drops_in(table: &str, inode: u64) -> Option<u64> {
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next()?.split_whitespace().collect();
    let inode_at = header.iter().position(|h| *h == "inode")?;
    lines.find_map(|row| {
        let fields: Vec<&str> = row.split_whitespace().collect();
        // The header's `tx_queue rx_queue` and `tr tm->when` are one
        // field each in a row: the row's inode sits two places earlier.
        let inode_field = fields.get(inode_at.checked_sub(2)?)?;
        (inode_field.parse::<u64>().ok()? == inode).then(|| fields.last()?.parse().ok())?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops            
  277: 0100007F:1FBD 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 123456 2 0000000000000000 42        
  278: 0100007F:1FBE 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 654321 2 0000000000000000 0         
";

    #[test]
    fn drops_are_read_from_the_row_of_the_socket() {
        assert_eq!(drops_in(TABLE, 123456), Some(42));
        assert_eq!(drops_in(TABLE, 654321), Some(0));
        assert_eq!(drops_in(TABLE, 1), None);
        assert_eq!(drops_in("", 1), None);
    }

    #[tokio::test]
    async fn a_bound_socket_is_found_in_the_kernels_table() {
        let (socket, granted, inode) = bind("127.0.0.1:0".parse().unwrap(), 1 << 20).unwrap();
        assert!(granted > 0);
        assert_ne!(inode, 0);
        assert_eq!(kernel_drops(inode), Some(0));
        drop(socket);
    }
}

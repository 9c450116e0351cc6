//! The statsd/DogStatsD datagram sockets, Unix and UDP: each datagram holds
//! one or more metric lines separated by `\n`, taken as [`statsd_lines`]
//! says (docs/protocol.md, "The datagram socket").
//!
//! Datagrams are read whole: the buffer is as large as the largest datagram
//! a local sender can send (a Unix datagram may be up to its sender's send
//! buffer, `net.core.wmem_max` doubled), unless `HAWKEYE_DGRAM_MAX_BYTES`
//! sets it lower. Each read asks the kernel for the datagram's real length
//! (`MSG_TRUNC`), so a datagram cut by a smaller buffer is known and counted.

use std::future::Future;
use std::io;
use std::mem::MaybeUninit;
use std::sync::Arc;

use tokio::io::Interest;
use tokio::net::{UdpSocket, UnixDatagram};
use tokio::sync::watch;
use tracing::debug;

use crate::pace::Pacer;
use crate::shared::Shared;
use crate::stats::Stats;
use crate::statsd_lines::{self, Listener};
/// When the kernel's limit cannot be read.
const FALLBACK_LARGEST: usize = 2 * 212_992;
/// The default buffer never exceeds this, whatever the kernel allows.
const MAX_DEFAULT: usize = 16 << 20;

/// The largest datagram a local sender can send: its send buffer may be
/// raised to `net.core.wmem_max`, which the kernel doubles, and a datagram
/// must fit in it.
pub(crate) fn largest_datagram() -> usize {
    std::fs::read_to_string("/proc/sys/net/core/wmem_max")
        .ok()
        .and_then(|s| s.trim().parse::<usize>().ok())
        .map_or(FALLBACK_LARGEST, |max| max.saturating_mul(2))
        .clamp(65_536, MAX_DEFAULT)
}

/// The largest UDP payload (a 65 535-byte IPv4 packet less its headers).
pub(crate) const LARGEST_UDP: usize = 65_507;

/// A socket datagrams are read from, each with its real length.
pub(crate) trait DatagramSocket: Send + Sync + 'static {
    /// Receives one datagram into `buf`; its full length, even when longer
    /// than `buf` (`MSG_TRUNC`).
    fn receive(
        &self,
        buf: &mut [MaybeUninit<u8>],
    ) -> impl Future<Output = io::Result<usize>> + Send;
}

impl DatagramSocket for UnixDatagram {
    async fn receive(&self, buf: &mut [MaybeUninit<u8>]) -> io::Result<usize> {
        self.async_io(Interest::READABLE, || {
            socket2::SockRef::from(self).recv_with_flags(buf, libc::MSG_TRUNC)
        })
        .await
    }
}

impl DatagramSocket for UdpSocket {
    async fn receive(&self, buf: &mut [MaybeUninit<u8>]) -> io::Result<usize> {
        self.async_io(Interest::READABLE, || {
            socket2::SockRef::from(self).recv_with_flags(buf, libc::MSG_TRUNC)
        })
        .await
    }
}

/// Reads datagrams of at most `max_bytes` (longer ones are cut and
/// counted) until shutdown.
pub(crate) async fn serve(
    shared: Arc<Shared>,
    socket: impl DatagramSocket,
    max_bytes: usize,
    listener: Listener,
    mut shutdown: watch::Receiver<bool>,
) {
    // Left uninitialised: only the pages datagrams reach become resident.
    let mut storage: Vec<u8> = Vec::with_capacity(max_bytes);
    let buf: &mut [MaybeUninit<u8>] = &mut storage.spare_capacity_mut()[..max_bytes];
    let mut pacer = Pacer::default();
    loop {
        let received = tokio::select! {
            r = socket.receive(buf) => r,
            _ = shutdown.changed() => return,
        };
        let length = match received {
            Ok(n) => n,
            Err(e) => {
                debug!(error = %e, "datagram receive failed");
                continue;
            }
        };
        let kept = length.min(buf.len());
        // SAFETY: the kernel wrote the first `kept` bytes.
        let payload = unsafe { std::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), kept) };
        take_datagram(&shared, payload, length, listener, &mut pacer).await;
    }
}

/// Takes the lines of one datagram of `length` bytes, of which `payload`
/// was read.
async fn take_datagram(
    shared: &Shared,
    mut payload: &[u8],
    length: usize,
    listener: Listener,
    pacer: &mut Pacer,
) {
    let stats = &shared.stats;
    Stats::bump(&stats.datagrams);
    if length > payload.len() {
        // Cut short by the buffer: the last line may have lost its end
        // (`@0.25` read as `@0.2`), so it is not taken; the lines beyond
        // the cut are not known.
        let keep = memchr::memrchr(b'\n', payload).map_or(0, |i| i + 1);
        let cut_line = !payload[keep..].is_empty();
        payload = &payload[..keep];
        Stats::bump(&stats.datagrams_truncated);
        Stats::add(&stats.datagram_bytes_truncated, (length - keep) as u64);
        Stats::add(&stats.lines_rejected, u64::from(cut_line));
        debug!(
            bytes = length,
            read = keep,
            "datagram longer than HAWKEYE_DGRAM_MAX_BYTES; its end is dropped"
        );
    }
    statsd_lines::take_lines(shared, payload, listener, pacer).await;
}

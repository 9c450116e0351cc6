//! The server's counters, read by `server.stats` (each is described in
//! docs/protocol.md, "server.stats"). Atomics, so that hot paths update them
//! without a lock.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use hawkeye_protocol::jsonrpc::StatsResult;
use hawkeye_protocol::LineError;

#[derive(Debug, Default)]
pub struct Stats {
    pub connections: AtomicU64,
    pub connections_total: AtomicU64,
    pub lines_accepted: AtomicU64,
    pub lines_rejected: AtomicU64,
    pub flushes: AtomicU64,
    pub store_errors: AtomicU64,
    pub buffered: AtomicU64,
    pub dropped: AtomicU64,
    pub series: AtomicU64,
    pub connections_refused: AtomicU64,
    pub connections_closed_idle: AtomicU64,
    pub connections_closed_line_too_long: AtomicU64,
    pub connections_closed_line_timeout: AtomicU64,
    pub connections_closed_input_budget: AtomicU64,
    /// Bytes of request lines held across connections; the budget
    /// (`HAWKEYE_MAX_PENDING_BYTES`) is checked against it.
    pub pending_bytes: AtomicU64,
    pub batches_refused: AtomicU64,
    pub output_waits: AtomicU64,
    pub lines_rejected_tags: AtomicU64,
    pub lines_rejected_key_bytes: AtomicU64,
    pub lines_rejected_range: AtomicU64,
    pub datagrams: AtomicU64,
    pub datagrams_truncated: AtomicU64,
    pub datagram_bytes_truncated: AtomicU64,
    pub events_lost: AtomicU64,
    pub dogstatsd_events: AtomicU64,
    pub service_checks: AtomicU64,
    /// The UDP socket's inode (0: no UDP listener), to read the datagrams
    /// the kernel dropped on it.
    udp_inode: AtomicU64,
}

impl Stats {
    pub fn snapshot(&self) -> StatsResult {
        let get = |c: &AtomicU64| c.load(Relaxed);
        StatsResult {
            connections: get(&self.connections),
            connections_total: get(&self.connections_total),
            lines_accepted: get(&self.lines_accepted),
            lines_rejected: get(&self.lines_rejected),
            flushes: get(&self.flushes),
            store_errors: get(&self.store_errors),
            buffered: get(&self.buffered),
            dropped: get(&self.dropped),
            series: get(&self.series),
            connections_refused: get(&self.connections_refused),
            connections_closed_idle: get(&self.connections_closed_idle),
            connections_closed_line_too_long: get(&self.connections_closed_line_too_long),
            connections_closed_line_timeout: get(&self.connections_closed_line_timeout),
            connections_closed_input_budget: get(&self.connections_closed_input_budget),
            pending_bytes: get(&self.pending_bytes),
            batches_refused: get(&self.batches_refused),
            output_waits: get(&self.output_waits),
            lines_rejected_tags: get(&self.lines_rejected_tags),
            lines_rejected_key_bytes: get(&self.lines_rejected_key_bytes),
            lines_rejected_range: get(&self.lines_rejected_range),
            datagrams: get(&self.datagrams),
            datagrams_truncated: get(&self.datagrams_truncated),
            datagram_bytes_truncated: get(&self.datagram_bytes_truncated),
            events_lost: get(&self.events_lost),
            dogstatsd_events: get(&self.dogstatsd_events),
            service_checks: get(&self.service_checks),
            udp_drops: match get(&self.udp_inode) {
                0 => 0,
                inode => crate::udp::kernel_drops(inode).unwrap_or(0),
            },
        }
    }

    pub fn set_udp_inode(&self, inode: u64) {
        self.udp_inode.store(inode, Relaxed);
    }

    pub fn add(counter: &AtomicU64, n: u64) {
        if n > 0 {
            counter.fetch_add(n, Relaxed);
        }
    }

    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Relaxed);
    }

    /// Counts one line refused by the parser, and the limit it passed if any.
    pub fn line_refused(&self, e: &LineError) {
        Stats::bump(&self.lines_rejected);
        match e {
            LineError::TooManyTags { .. } => Stats::bump(&self.lines_rejected_tags),
            LineError::KeyTooLong { .. } | LineError::MemberTooLong { .. } => {
                Stats::bump(&self.lines_rejected_key_bytes)
            }
            _ => {}
        }
    }
}

//! Who this server is in the store, and how it numbers its flushes.
//!
//! The store keeps, per metric name and server id, the last flush it applied
//! (docs/storage.md, "Exactly once"), and one watermark per server id
//! (docs/cluster.md, "Server ids"). A random id per process would add one
//! marker per restart; a stable one (by default the host name and the
//! socket path) makes a restarted server replace its own. A stable id must
//! then never number a flush at or below one the store already recorded, so
//! flushes are numbered from the wall clock in microseconds, never from 1
//! (milliseconds are too coarse: a server stopped and started again in one
//! process can cut its next flush in the millisecond of its last).

use std::path::Path;

/// The name a server goes by when `HAWKEYE_SERVER_ID` is not set:
/// `<host name>:<absolute socket path>`, the same across restarts and
/// different for two servers on one host (they cannot share a socket).
pub(crate) fn default_name(socket_path: &Path) -> String {
    let host = hostname::get()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "localhost".to_string());
    // Relative paths differ by working directory: make them absolute.
    let socket = std::path::absolute(socket_path).unwrap_or_else(|_| socket_path.to_path_buf());
    format!("{host}:{}", socket.display())
}

/// The number that stands for `name` in the store's markers: a fixed hash
/// (FNV-1a, 63 bits), so every version agrees on it.
pub(crate) fn id_of(name: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in name.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash >> 1
}

/// The number of the flush after `previous`, cut at `now_us` (unix µs, below
/// 2^53 until the year 2255, so exact as a Lua number): the clock, or one
/// more than the last when the clock has not moved on (a clock set back). A
/// server restarted with
/// the same id starts above anything its previous run numbered, unless the
/// clock went back by more than that run's lifetime.
pub(crate) fn next_seq(previous: u64, now_us: u64) -> u64 {
    now_us.max(previous + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_differ_per_socket() {
        let a = default_name(Path::new("/run/hawkeye/a.sock"));
        let b = default_name(Path::new("/run/hawkeye/b.sock"));
        assert_ne!(a, b);
        assert!(a.ends_with(":/run/hawkeye/a.sock"), "{a}");
        assert_eq!(id_of(&a), id_of(&a.clone()));
        assert_ne!(id_of(&a), id_of(&b));
        // Fixed value: changing the hash would orphan every marker.
        assert_eq!(id_of("web-1:/tmp/hawkeye.sock"), 0x001d_359e_be33_d9f1);
        assert!(id_of("x") < 1 << 63);
    }

    #[test]
    fn relative_sockets_are_named_by_their_absolute_path() {
        let name = default_name(Path::new("hawkeye.sock"));
        let cwd = std::env::current_dir().unwrap();
        assert!(
            name.ends_with(&format!(":{}", cwd.join("hawkeye.sock").display())),
            "{name}"
        );
    }

    #[test]
    fn sequences_follow_the_clock_and_always_grow() {
        assert_eq!(next_seq(0, 1_700_000_000_000_000), 1_700_000_000_000_000);
        assert_eq!(
            next_seq(1_700_000_000_000_000, 1_700_000_000_000_200),
            1_700_000_000_000_200
        );
        // The same microsecond, or the clock set back: still one more.
        assert_eq!(
            next_seq(1_700_000_000_000_200, 1_700_000_000_000_200),
            1_700_000_000_000_201
        );
        assert_eq!(next_seq(1_700_000_000_000_200, 5), 1_700_000_000_000_201);
    }
}

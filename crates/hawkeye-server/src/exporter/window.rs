//! What a distribution or a set shows over a sliding window: the last
//! [`WINDOW_SECS`] seconds, kept as [`BUCKETS`] buckets of
//! [`BUCKET_SECS`] each (so the window really covers 50 to 60 seconds, the
//! oldest bucket being partly over). A bucket is dropped whole once it is
//! older than the window: memory stays at most six buckets a series.

use std::collections::HashSet;
use std::hash::{BuildHasher, Hash};

use hawkeye_store::aggregate::DistributionStats;

pub(crate) const BUCKET_SECS: i64 = 10;
pub(crate) const BUCKETS: usize = 6;
pub(crate) const WINDOW_SECS: i64 = BUCKET_SECS * BUCKETS as i64;

/// Values by bucket, oldest first; each with the bucket's number
/// (`second / BUCKET_SECS`).
#[derive(Debug, Default)]
pub(crate) struct Window<T> {
    buckets: Vec<(i64, T)>,
}

impl<T: Default> Window<T> {
    /// The bucket for `second`, made if need be; `None` for a second older
    /// than the window ending at `now`. Buckets out of the window go, and
    /// `freed` hears of each (to give its budget back).
    pub fn bucket(&mut self, second: i64, now: i64, freed: impl FnMut(T)) -> Option<&mut T> {
        self.expire(now, freed);
        let number = second.div_euclid(BUCKET_SECS);
        if number <= (now - WINDOW_SECS).div_euclid(BUCKET_SECS) {
            return None;
        }
        let at = match self.buckets.binary_search_by_key(&number, |(n, _)| *n) {
            Ok(at) => at,
            Err(at) => {
                self.buckets.insert(at, (number, T::default()));
                at
            }
        };
        Some(&mut self.buckets[at].1)
    }

    /// Drops the buckets wholly older than the window ending at `now`.
    pub fn expire(&mut self, now: i64, mut freed: impl FnMut(T)) {
        let oldest_kept = (now - WINDOW_SECS).div_euclid(BUCKET_SECS) + 1;
        let gone = self.buckets.partition_point(|(n, _)| *n < oldest_kept);
        for (_, value) in self.buckets.drain(..gone) {
            freed(value);
        }
    }

    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.buckets.iter().map(|(_, v)| v)
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

/// A distribution's observations of the window, merged.
pub(crate) fn merged(window: &Window<DistributionStats>) -> DistributionStats {
    let mut all = DistributionStats::default();
    for stats in window.values() {
        all.merge(stats);
    }
    all
}

/// The distinct members of a set's window (members are kept as hashes).
pub(crate) fn unique(window: &Window<HashSet<u64>>) -> usize {
    let mut values = window.values();
    match (values.next(), window.buckets.len()) {
        (None, _) => 0,
        (Some(only), 1) => only.len(),
        (Some(first), _) => {
            let mut all = first.clone();
            for members in values {
                all.extend(members.iter().copied());
            }
            all.len()
        }
    }
}

/// A set member as kept: its hash (8 bytes whatever its length).
pub(crate) fn member_hash(hasher: &impl BuildHasher, member: &str) -> u64 {
    let mut h = hasher.build_hasher();
    member.hash(&mut h);
    std::hash::Hasher::finish(&h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_older_than_the_window_go() {
        let mut w: Window<u32> = Window::default();
        let mut freed = Vec::new();
        *w.bucket(1000, 1000, |_| {}).unwrap() += 1;
        *w.bucket(1005, 1005, |_| {}).unwrap() += 1;
        *w.bucket(1012, 1012, |_| {}).unwrap() += 5;
        assert_eq!(w.values().copied().collect::<Vec<_>>(), vec![2, 5]);
        // 1059: the window reaches back to 1000 (bucket 100 is 1000-1009).
        w.expire(1059, |v| freed.push(v));
        assert_eq!(w.values().copied().collect::<Vec<_>>(), vec![2, 5]);
        w.expire(1060, |v| freed.push(v));
        assert_eq!(w.values().copied().collect::<Vec<_>>(), vec![5]);
        assert_eq!(freed, vec![2]);
        assert!(w.bucket(1000, 1060, |_| {}).is_none(), "too old");
        w.expire(2000, |v| freed.push(v));
        assert!(w.is_empty());
        assert_eq!(freed, vec![2, 5]);
    }
}

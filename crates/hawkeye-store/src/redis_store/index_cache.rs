//! The series index of each name, kept between reads: the index changes only
//! when a series appears (or wakes after an idle spell), and writers record
//! each such change in one stream, so a read asks for the stream's new
//! entries (one command) instead of every name's index (two commands per
//! name). docs/storage.md ("Reads", "The index cache").
//!
//! Why a cached entry holds every series a read needs: it was read with the
//! members scored at or after `lower`, at most `now - WAKE_SECS - SKEW_SECS`.
//! A member scored before that, when written again, is scored
//! `WAKE_SECS` or more before Redis's clock, so the write script reports the
//! name as changed (`scripts/write.lua`); a member never written again
//! keeps its old score, below every later window. Members scored later
//! than a window (or expired since) are read for nothing: their hashes
//! answer no data. Every entry is read again after at most
//! `2 × MAX_AGE` anyway, for writers that died between their write and
//! its change record, or that predate the stream.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rapidhash::quality::RandomState;

use super::keys::Keys;
pub(crate) use super::read_plan::Members;
use super::read_plan::{plan_one, PlanKey, Planned};
use crate::window::WindowQuery;

/// Maps keyed by metric names: a fast hasher, seeded per map (names come
/// from clients, who must not collide them at will).
pub(crate) type NameMap<K, V> = HashMap<K, V, RandomState>;

/// A member scored this long before Redis's clock is idle: writing it again
/// is recorded as a change of its name's index.
pub(crate) const WAKE_SECS: i64 = 60;
/// Allowance for a reader's clock ahead of Redis's.
const SKEW_SECS: i64 = 60;
/// How long an entry is used at most (each gets between one and two times
/// this, so that entries read together are not all read again together).
const MAX_AGE: Duration = Duration::from_secs(60);
/// Entries unused this long are dropped.
const UNUSED: Duration = Duration::from_secs(300);
/// Entries the change stream keeps (at least; writers trim it).
pub(crate) const CHANGES_KEPT: usize = 10_000;
/// Stream entries read at once at most. More means a burst of new series,
/// or a reader that has not read for so long that entries it needs may
/// have been trimmed: either way it drops every entry.
pub(crate) const CHANGES_PER_READ: usize = 1_000;
/// Names per stream entry at most.
pub(crate) const NAMES_PER_CHANGE: usize = 100;

/// Plans kept per name at most: one per distinct query of the name (kind,
/// aggregation, tag filter); the agent has a few per name, an ad-hoc reader
/// past this gets its plans made afresh at each read.
pub(crate) const PLANS_PER_NAME: usize = 16;
/// The series of a name's kept plans, per member of the name, at most:
/// bounds the plans' memory (32 bytes a series) by the members held.
pub(crate) const PLAN_SERIES_PER_MEMBER: usize = 2;

struct Entry {
    /// Members scored at or after this second are all in `members`.
    lower: i64,
    members: Members,
    /// The plans of the queries read over `members` so far, dropped with them.
    plans: Vec<(PlanKey, Planned)>,
    refresh_at: Instant,
    used_at: Instant,
}

#[derive(Default)]
struct Inner {
    entries: NameMap<String, Entry>,
    /// Members held, over all entries.
    held: usize,
    /// The newest stream entry read.
    last_id: Option<String>,
}

/// The cache; `limit` bounds the members held (`HAWKEYE_INDEX_CACHE`, 0:
/// nothing is cached).
pub(crate) struct IndexCache {
    limit: usize,
    inner: Mutex<Inner>,
}

/// What the stream said since the last read.
pub(crate) enum Changes<'a> {
    /// These names changed (and the newest entry's id, if any).
    Names(Vec<&'a str>, Option<&'a str>),
    /// Everything may have changed: the first read (which learns the newest
    /// entry's id), a burst, or a reader so late that entries it needs may
    /// have been trimmed (which starts again from the newest entry).
    All(Option<&'a str>),
}

/// The names whose index changed, as the cache applied them. Asked once
/// per query of a read: hashed with the maps' fast hasher, not SipHash.
pub(crate) enum Changed {
    Names(HashSet<String, RandomState>),
    All,
}

impl Changed {
    pub(crate) fn none() -> Changed {
        Changed::Names(HashSet::default())
    }

    /// Nothing changed.
    pub(crate) fn is_empty(&self) -> bool {
        matches!(self, Changed::Names(names) if names.is_empty())
    }

    pub(crate) fn contains(&self, name: &str) -> bool {
        match self {
            Changed::Names(names) => names.contains(name),
            Changed::All => true,
        }
    }
}

impl IndexCache {
    pub(crate) fn new(limit: usize) -> IndexCache {
        IndexCache {
            limit,
            inner: Mutex::new(Inner::default()),
        }
    }

    pub(crate) fn enabled(&self) -> bool {
        self.limit > 0
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The lowest bound a fresh read of a name may cache, at reader time
    /// `now_secs`, for a read that needs the members from `needed`.
    pub(crate) fn lower_bound(needed: i64, now_secs: i64) -> i64 {
        needed.min(now_secs - WAKE_SECS - SKEW_SECS)
    }

    /// Where the change stream is to be read from: after the newest entry
    /// seen, or `None` (learn the newest entry) when there is none.
    pub(crate) fn stream_position(&self) -> Option<String> {
        self.lock().last_id.clone()
    }

    /// Applies what the stream said: the entries of the names it lists (or
    /// all) are dropped.
    pub(crate) fn apply(&self, changes: Changes) -> Changed {
        let mut inner = self.lock();
        let (names, id) = match changes {
            Changes::All(id) => {
                inner.held = 0;
                inner.entries.clear();
                inner.last_id = id.map(str::to_string);
                return Changed::All;
            }
            Changes::Names(names, id) => (names, id),
        };
        if let Some(id) = id {
            inner.last_id = Some(id.to_string());
        }
        for name in &names {
            if let Some(entry) = inner.entries.remove(*name) {
                inner.held -= entry.members.len();
            }
        }
        Changed::Names(names.into_iter().map(str::to_string).collect())
    }

    /// The members of `name` if held for reads that need members from
    /// `needed` on, and not due to be read again.
    #[cfg(test)]
    fn get(&self, name: &str, needed: i64, now: Instant) -> Option<Members> {
        let inner = self.lock();
        let entry = inner.entries.get(name)?;
        (entry.lower <= needed && entry.refresh_at > now).then(|| entry.members.clone())
    }

    /// For each `(index, query, needed)`: `held` with the query's plan if
    /// its name's members are held for reads that need members from
    /// `needed` on and are not due to be read again (the plan made over
    /// them the first time, kept with them), `missing` otherwise. One lock
    /// for all.
    pub(crate) fn plans<'a>(
        &self,
        keys: &Keys,
        queries: impl IntoIterator<Item = (usize, &'a WindowQuery, i64)>,
        now: Instant,
        mut held: impl FnMut(usize, Planned),
        mut missing: impl FnMut(usize),
    ) {
        let mut inner = self.lock();
        for (i, q, needed) in queries {
            match inner.entries.get_mut(q.name.as_str()) {
                Some(entry) if entry.lower <= needed && entry.refresh_at > now => {
                    entry.used_at = now;
                    held(i, entry.plan_of(keys, q));
                }
                _ => missing(i),
            }
        }
    }

    /// Keeps `members`, read with the bound `lower`, unless that would hold
    /// more than the limit. Drops unused entries first.
    pub(crate) fn put(&self, name: &str, lower: i64, members: Members, now: Instant) {
        if !self.enabled() {
            return;
        }
        let mut inner = self.lock();
        if let Some(old) = inner.entries.remove(name) {
            inner.held -= old.members.len();
        }
        if inner.held + members.len() > self.limit {
            let before = inner.entries.len();
            inner
                .entries
                .retain(|_, e| now.duration_since(e.used_at) < UNUSED);
            if inner.entries.len() != before {
                inner.held = inner.entries.values().map(|e| e.members.len()).sum();
            }
            if inner.held + members.len() > self.limit {
                return;
            }
        }
        // Between one and two MAX_AGEs, spread by the name.
        let spread = MAX_AGE.mul_f64(spread_of(name));
        inner.held += members.len();
        inner.entries.insert(
            name.to_string(),
            Entry {
                lower,
                members,
                plans: Vec::new(),
                refresh_at: now + MAX_AGE + spread,
                used_at: now,
            },
        );
    }

    /// Members held (for tests).
    #[cfg(test)]
    fn held(&self) -> usize {
        self.lock().held
    }
}

impl Entry {
    /// The plan of `q` over the members: the one kept, or made (and kept,
    /// up to [`PLANS_PER_NAME`]).
    fn plan_of(&mut self, keys: &Keys, q: &WindowQuery) -> Planned {
        if let Some((_, planned)) = self.plans.iter().find(|(key, _)| key.fits(q)) {
            return planned.clone();
        }
        let planned = plan_one(keys, q, &self.members);
        let series = |p: &Planned| {
            p.as_ref()
                .ok()
                .and_then(Option::as_ref)
                .map_or(0, |p| p.series.len())
        };
        let kept: usize = self.plans.iter().map(|(_, p)| series(p)).sum();
        if self.plans.len() < PLANS_PER_NAME
            && kept + series(&planned) <= PLAN_SERIES_PER_MEMBER * self.members.len()
        {
            self.plans.push((PlanKey::of(q), planned.clone()));
        }
        planned
    }
}

/// A fixed fraction in [0, 1) for `name` (FNV-1a).
fn spread_of(name: &str) -> f64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in name.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    (hash % 1000) as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn members(n: usize) -> Members {
        Arc::new((0..n).map(|i| (0, format!("c|id:{i}"))).collect())
    }

    #[test]
    fn entries_serve_later_windows_until_changed_or_old() {
        let cache = IndexCache::new(100);
        let t = Instant::now();
        cache.put("a", 1000, members(2), t);
        assert!(cache.get("a", 1000, t).is_some());
        assert!(cache.get("a", 1500, t).is_some(), "a later window");
        assert!(cache.get("a", 999, t).is_none(), "an earlier window");
        assert!(cache.get("a", 1000, t + 2 * MAX_AGE).is_none(), "too old");
        let changed = cache.apply(Changes::Names(vec!["a", "b"], Some("5-0")));
        assert!(changed.contains("a") && changed.contains("b") && !changed.contains("c"));
        assert!(cache.get("a", 1000, t).is_none());
        assert_eq!(cache.held(), 0);
        assert_eq!(cache.stream_position().as_deref(), Some("5-0"));
        cache.apply(Changes::Names(Vec::new(), None));
        assert_eq!(cache.stream_position().as_deref(), Some("5-0"), "kept");
        assert!(cache.apply(Changes::All(None)).contains("c"));
        assert_eq!(cache.stream_position(), None, "learnt again");
    }

    #[test]
    fn the_limit_bounds_the_members_held() {
        let cache = IndexCache::new(5);
        let t = Instant::now();
        cache.put("a", 0, members(3), t);
        cache.put("b", 0, members(3), t);
        assert!(cache.get("b", 0, t).is_none(), "over the limit: not kept");
        assert_eq!(cache.held(), 3);
        // Unused entries make room.
        cache.put("b", 0, members(3), t + UNUSED);
        assert!(cache.get("b", 0, t + UNUSED).is_some());
        assert!(cache.get("a", 0, t + UNUSED).is_none());
        assert_eq!(cache.held(), 3);
        cache.apply(Changes::All(None));
        assert_eq!(cache.held(), 0);
        let off = IndexCache::new(0);
        off.put("a", 0, members(1), t);
        assert!(off.get("a", 0, t).is_none());
    }

    /// The plans of the queries over a name, kept with its members: the
    /// same plan for a later window, a new one for another filter, none
    /// past the bounds, and all gone with the members.
    #[test]
    fn plans_are_kept_with_the_members_and_bounded() {
        let keys = Keys::new("hk");
        let cache = IndexCache::new(100);
        let t = Instant::now();
        cache.put("a", 0, members(2), t);
        let plan_of = |q: &WindowQuery| {
            let mut got = None;
            cache.plans(&keys, [(0, q, 10)], t, |_, p| got = Some(p), |_| {});
            got.expect("held").unwrap().unwrap()
        };
        let q = WindowQuery::new("a", 1, 100);
        let first = plan_of(&q);
        assert_eq!(first.series.len(), 2);
        let later = WindowQuery::new("a", 1, 160);
        assert!(Arc::ptr_eq(&first, &plan_of(&later)), "the same plan");
        let mut one = q.clone();
        one.tags.0.insert("id".into(), "1".into());
        let narrow = plan_of(&one);
        assert_eq!(narrow.series.len(), 1);
        assert!(Arc::ptr_eq(&narrow, &plan_of(&one)));
        // Two members, so plans of four series at most: a third plan of
        // both is made afresh each time.
        let mut gauge = q.clone();
        gauge.aggregation = Some(crate::Aggregation::Sum);
        assert!(!Arc::ptr_eq(&plan_of(&gauge), &plan_of(&gauge)), "not kept");
        // Read again: the plans go with the members.
        cache.put("a", 0, members(2), t);
        assert!(!Arc::ptr_eq(&first, &plan_of(&q)));
        let mut missing = Vec::new();
        cache.plans(&keys, [(7, &q, -5)], t, |_, _| {}, |i| missing.push(i));
        assert_eq!(missing, [7], "an earlier window than held");
        // Many filters over many members: at most PLANS_PER_NAME kept.
        cache.put("b", 0, members(50), t);
        let filters: Vec<WindowQuery> = (0..PLANS_PER_NAME + 3)
            .map(|i| {
                let mut f = WindowQuery::new("b", 1, 100);
                f.tags.0.insert("id".into(), i.to_string());
                f
            })
            .collect();
        for f in &filters {
            cache.plans(&keys, [(0, f, 10)], t, |_, _| {}, |_| {});
        }
        let kept = cache.lock().entries["b"].plans.len();
        assert_eq!(kept, PLANS_PER_NAME);
    }

    #[test]
    fn bounds_leave_room_for_idle_members_and_clock_skew() {
        assert_eq!(IndexCache::lower_bound(500, 10_000), 500);
        assert_eq!(
            IndexCache::lower_bound(9_990, 10_000),
            10_000 - WAKE_SECS - SKEW_SECS
        );
        let spread: Vec<f64> = ["a", "b", "c"].iter().map(|n| spread_of(n)).collect();
        assert!(spread.iter().all(|s| (0.0..1.0).contains(s)));
        assert_ne!(spread[0], spread[1]);
    }
}

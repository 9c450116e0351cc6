//! Which series the server holds, each identified without an allocation of
//! its own: metric names interned (one copy per name, with the number of
//! series using it), every series' canonical tags in one arena string, and
//! a hash table of slot numbers. A series costs a 16-byte [`KeyRef`], its
//! tag bytes and a table entry; at a million series a `String` pair and an
//! `Arc` per series had been most of the server's memory (README, "Server
//! ingest").
//!
//! Slot numbers are stable while a series is held (the aggregator keeps its
//! state in a vector beside this one) and reused after it is removed.

use std::hash::{BuildHasher, Hash, Hasher};

use hashbrown::HashTable;
use hawkeye_protocol::{MetricKind, SeriesKey};
use rapidhash::quality::RandomState;

/// Why a new series was not added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Full {
    /// `max_series` series are held.
    Series,
    /// The tags of the held series fill the arena's 4 GiB of offsets.
    KeyBytes,
}

/// A held series' identity: its kind, interned name and tags in the arena.
#[derive(Debug, Clone, Copy)]
struct KeyRef {
    kind: MetricKind,
    name: u32,
    tags_start: u32,
    tags_len: u32,
}

/// The metric names of the held series, each once.
#[derive(Default)]
struct Names {
    text: Vec<Box<str>>,
    /// Series using each name; 0 marks a free entry (in `free`).
    users: Vec<u32>,
    index: HashTable<u32>,
    free: Vec<u32>,
}

impl Names {
    /// The id of `name`, interned if new, with one more user.
    fn acquire(&mut self, hasher: &RandomState, name: &str) -> u32 {
        let Names {
            text,
            users,
            index,
            free,
        } = self;
        let hash = hasher.hash_one(name);
        if let Some(&id) = index.find(hash, |&id| &*text[id as usize] == name) {
            users[id as usize] += 1;
            return id;
        }
        let id = match free.pop() {
            Some(id) => {
                text[id as usize] = name.into();
                users[id as usize] = 1;
                id
            }
            None => {
                text.push(name.into());
                users.push(1);
                (text.len() - 1) as u32
            }
        };
        index.insert_unique(hash, id, |&id| hasher.hash_one(&*text[id as usize]));
        id
    }

    /// One user fewer; the name is dropped with its last user.
    fn release(&mut self, hasher: &RandomState, id: u32) {
        let i = id as usize;
        self.users[i] -= 1;
        if self.users[i] > 0 {
            return;
        }
        let hash = hasher.hash_one(&*self.text[i]);
        if let Ok(entry) = self.index.find_entry(hash, |&j| j == id) {
            entry.remove();
        }
        self.text[i] = Box::default();
        self.free.push(id);
    }

    fn get(&self, id: u32) -> &str {
        &self.text[id as usize]
    }
}

/// Every held series' canonical tags, back to back. Removing a series
/// leaves a hole (counted as garbage) unless its tags were the last ones;
/// the arena is rewritten without holes when they are half of it.
#[derive(Default)]
struct Arena {
    bytes: String,
    garbage: usize,
}

pub(super) struct Series {
    index: HashTable<u32>,
    hasher: RandomState,
    /// By slot number; `None` for a free slot (listed in `free`).
    keys: Vec<Option<KeyRef>>,
    free: Vec<u32>,
    names: Names,
    arena: Arena,
}

impl Series {
    pub fn new() -> Series {
        Series {
            index: HashTable::new(),
            hasher: RandomState::new(),
            keys: Vec::new(),
            free: Vec::new(),
            names: Names::default(),
            arena: Arena::default(),
        }
    }

    /// Series held.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Slot numbers given out so far (held or free): the aggregator's state
    /// vector has this length.
    pub fn slots(&self) -> usize {
        self.keys.len()
    }

    /// The slot of series `(kind, name, tags)` (tags canonical), added if new
    /// and fewer than `max_series` are held. Returns whether it was added.
    pub fn find_or_add(
        &mut self,
        kind: MetricKind,
        name: &str,
        tags: &str,
        max_series: usize,
    ) -> Result<(u32, bool), Full> {
        let hash = series_hash(&self.hasher, kind, name, tags);
        let Series {
            index,
            keys,
            names,
            arena,
            ..
        } = self;
        let same = |&i: &u32| {
            keys[i as usize].is_some_and(|k| {
                k.kind == kind && names.get(k.name) == name && tags_of(arena, &k) == tags
            })
        };
        if let Some(&i) = index.find(hash, same) {
            return Ok((i, false));
        }
        if index.len() >= max_series {
            return Err(Full::Series);
        }
        let end = arena.bytes.len() + tags.len();
        if u32::try_from(end).is_err() {
            return Err(Full::KeyBytes);
        }
        let key = KeyRef {
            kind,
            name: names.acquire(&self.hasher, name),
            tags_start: arena.bytes.len() as u32,
            tags_len: tags.len() as u32,
        };
        arena.bytes.push_str(tags);
        let i = match self.free.pop() {
            Some(i) => {
                keys[i as usize] = Some(key);
                i
            }
            None => {
                keys.push(Some(key));
                (keys.len() - 1) as u32
            }
        };
        let Series {
            index,
            hasher,
            keys,
            names,
            arena,
            ..
        } = self;
        index.insert_unique(hash, i, |&j| slot_hash(hasher, keys, names, arena, j));
        Ok((i, true))
    }

    /// Removes the series in slot `i`, which becomes free.
    pub fn remove(&mut self, i: u32) {
        let Some(key) = self.keys[i as usize].take() else {
            return;
        };
        let hash = series_hash(
            &self.hasher,
            key.kind,
            self.names.get(key.name),
            tags_of(&self.arena, &key),
        );
        if let Ok(entry) = self.index.find_entry(hash, |&j| j == i) {
            entry.remove();
        }
        self.names.release(&self.hasher, key.name);
        self.free.push(i);
        let end = (key.tags_start + key.tags_len) as usize;
        if end == self.arena.bytes.len() {
            // The newest series (a refused or undone line's): no hole.
            self.arena.bytes.truncate(key.tags_start as usize);
        } else {
            self.arena.garbage += key.tags_len as usize;
        }
        if self.arena.garbage > 4096 && self.arena.garbage * 2 > self.arena.bytes.len() {
            self.compact();
        }
    }

    /// Rewrites the arena without the tags of removed series.
    fn compact(&mut self) {
        let live = self.arena.bytes.len() - self.arena.garbage;
        let mut bytes = String::with_capacity(live);
        for key in self.keys.iter_mut().flatten() {
            let start = key.tags_start as usize;
            let tags = &self.arena.bytes[start..start + key.tags_len as usize];
            key.tags_start = bytes.len() as u32;
            bytes.push_str(tags);
        }
        self.arena = Arena { bytes, garbage: 0 };
    }

    pub fn is_held(&self, i: u32) -> bool {
        self.keys[i as usize].is_some()
    }

    /// The interned name's id of the series in slot `i` (held).
    pub fn name_id(&self, i: u32) -> u32 {
        self.keys[i as usize].map_or(0, |k| k.name)
    }

    /// The key of the series in slot `i` (held), as the store takes it.
    pub fn key(&self, i: u32) -> Option<SeriesKey> {
        let key = self.keys[i as usize]?;
        Some(SeriesKey {
            kind: key.kind,
            name: self.names.get(key.name).to_string(),
            tags: tags_of(&self.arena, &key).to_string(),
        })
    }

    /// Bytes this table holds on the heap (capacities, not lengths: what
    /// the process pays for).
    pub fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        let names: usize = self.names.text.iter().map(|t| t.len()).sum::<usize>()
            + self.names.text.capacity() * size_of::<Box<str>>()
            + self.names.users.capacity() * 4
            + self.names.index.capacity() * 5
            + self.names.free.capacity() * 4;
        // A hashbrown table holds a control byte beside each bucket.
        self.index.capacity() * (size_of::<u32>() + 1)
            + self.keys.capacity() * size_of::<Option<KeyRef>>()
            + self.free.capacity() * size_of::<u32>()
            + self.arena.bytes.capacity()
            + names
    }

    /// Bytes of tags the arena holds, holes included.
    #[cfg(test)]
    pub fn arena_len(&self) -> usize {
        self.arena.bytes.len()
    }
}

fn tags_of<'a>(arena: &'a Arena, key: &KeyRef) -> &'a str {
    let start = key.tags_start as usize;
    &arena.bytes[start..start + key.tags_len as usize]
}

fn series_hash(hasher: &RandomState, kind: MetricKind, name: &str, tags: &str) -> u64 {
    let mut h = hasher.build_hasher();
    kind.hash(&mut h);
    name.hash(&mut h);
    tags.hash(&mut h);
    h.finish()
}

fn slot_hash(
    hasher: &RandomState,
    keys: &[Option<KeyRef>],
    names: &Names,
    arena: &Arena,
    i: u32,
) -> u64 {
    keys[i as usize].map_or(0, |k| {
        series_hash(hasher, k.kind, names.get(k.name), tags_of(arena, &k))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_held_once_and_dropped_with_their_last_series() {
        let mut s = Series::new();
        let (a, _) = s
            .find_or_add(MetricKind::Counter, "req", "a=1", 10)
            .unwrap();
        let (b, new) = s
            .find_or_add(MetricKind::Counter, "req", "a=2", 10)
            .unwrap();
        assert!(new);
        assert_eq!(s.name_id(a), s.name_id(b), "one copy of the name");
        assert_eq!(s.names.text.len(), 1);
        s.remove(a);
        assert_eq!(s.key(b).unwrap().name, "req", "still used by b");
        s.remove(b);
        assert_eq!(s.names.index.len(), 0);
        assert_eq!(s.names.free.len(), 1);
        let (c, _) = s.find_or_add(MetricKind::Gauge, "other", "", 10).unwrap();
        assert_eq!(s.names.text.len(), 1, "the free name entry is reused");
        assert_eq!(s.key(c).unwrap().name, "other");
    }

    #[test]
    fn removed_tags_are_reclaimed_and_keys_survive_compaction() {
        let mut s = Series::new();
        let tags = |i: usize| format!("id={i:0>20}");
        for i in 0..1000 {
            s.find_or_add(MetricKind::Counter, "m", &tags(i), 1000)
                .unwrap();
        }
        let full = s.arena_len();
        assert_eq!(full, 1000 * tags(0).len());
        // Two series of three go: holes until they are half the arena.
        for i in (0..1000).filter(|i| i % 3 != 0) {
            s.remove(i);
        }
        assert!(s.arena.garbage <= s.arena_len() / 2);
        assert!(s.arena_len() < full);
        for i in (0..1000).step_by(3) {
            let key = s.key(i as u32).unwrap();
            assert_eq!(key.tags, tags(i));
            let found = s.find_or_add(MetricKind::Counter, "m", &tags(i), 1000);
            assert_eq!(found, Ok((i as u32, false)));
        }
        // Churn through many more series than are held at once: the arena
        // follows what is held.
        for round in 0..20 {
            let mut added = Vec::new();
            for i in 0..500 {
                let tags = format!("round={round},id={i:0>20}");
                added.push(
                    s.find_or_add(MetricKind::Counter, "m", &tags, 1000)
                        .unwrap()
                        .0,
                );
            }
            added.into_iter().for_each(|i| s.remove(i));
        }
        assert_eq!(s.len(), 334);
        assert!(s.arena_len() <= 2 * 334 * tags(0).len() + 500 * 40 + 4096);
    }

    #[test]
    fn the_newest_series_removed_leaves_no_hole() {
        let mut s = Series::new();
        s.find_or_add(MetricKind::Counter, "m", "a=1", 10).unwrap();
        let (i, _) = s.find_or_add(MetricKind::Counter, "m", "b=2", 10).unwrap();
        s.remove(i);
        assert_eq!((s.arena_len(), s.arena.garbage), (3, 0));
        assert_eq!(
            s.find_or_add(MetricKind::Counter, "m", "c=3", 1),
            Err(Full::Series)
        );
    }
}

//! The in-memory store's alert data: states with their expiry, the outbox,
//! silences and the marker, with the same semantics as the Redis store (see
//! [`crate::alerts`]). Times are the caller's unix milliseconds where the
//! trait gives them, the wall clock otherwise (state expiry).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::alerts::{AlertCommit, AlertRead, AlertSnapshot, OutboxEntry, Settle};

#[derive(Default)]
pub(crate) struct Alerts {
    /// Key → (state, expires at unix ms).
    states: HashMap<String, (String, u64)>,
    /// States under pre-versioning keys (never written by this version;
    /// kept so that migration behaves as on Redis).
    legacy: HashMap<String, String>,
    /// Id → (mail, claimable from unix ms), in id order.
    outbox: BTreeMap<String, (String, u64)>,
    /// Id → (silence, ends at unix ms).
    silences: HashMap<String, (String, u64)>,
    marker: Option<String>,
    /// History streams: (unix ms, entry), oldest first.
    history: HashMap<String, std::collections::VecDeque<(u64, String)>>,
}

fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn ms(d: Duration) -> u64 {
    d.as_millis().min(u64::MAX as u128) as u64
}

impl Alerts {
    fn state(&self, key: &str, now: u64) -> Option<&str> {
        self.states
            .get(key)
            .filter(|(_, expires)| *expires > now)
            .map(|(s, _)| s.as_str())
    }

    pub(crate) fn read(&mut self, read: &AlertRead) -> AlertSnapshot {
        let now = wall_ms();
        let states = read
            .keys
            .iter()
            .map(|k| self.state(k, now).map(str::to_owned))
            .collect();
        let marker = self
            .marker
            .get_or_insert_with(|| read.marker.clone())
            .clone();
        AlertSnapshot {
            states,
            marker,
            silences: self.silences(read.now_ms),
        }
    }

    pub(crate) fn commit(&mut self, commit: &AlertCommit) -> bool {
        let now = wall_ms();
        if self.state(&commit.key, now) != commit.expected.as_deref() {
            return false;
        }
        match &commit.new {
            Some(new) => {
                let expires = now.saturating_add(ms(commit.ttl));
                self.states
                    .insert(commit.key.clone(), (new.clone(), expires));
            }
            None => {
                self.states.remove(&commit.key);
            }
        }
        for entry in &commit.outbox {
            // Recording the same notice twice keeps one entry.
            self.outbox
                .entry(entry.id.clone())
                .or_insert_with(|| (entry.body.clone(), 0));
        }
        // Expired states would otherwise stay in memory for ever.
        self.states.retain(|_, (_, expires)| *expires > now);
        true
    }

    pub(crate) fn claim(&mut self, now_ms: u64, lease: Duration, max: usize) -> Vec<OutboxEntry> {
        let until = now_ms.saturating_add(ms(lease));
        self.outbox
            .iter_mut()
            .filter(|(_, (_, due))| *due <= now_ms)
            .take(max)
            .map(|(id, (body, due))| {
                *due = until;
                OutboxEntry {
                    id: id.clone(),
                    body: body.clone(),
                }
            })
            .collect()
    }

    pub(crate) fn settle(&mut self, id: &str, settle: Settle) {
        match settle {
            Settle::Done => {
                self.outbox.remove(id);
            }
            Settle::RetryAt(at) => {
                if let Some((_, due)) = self.outbox.get_mut(id) {
                    *due = at;
                }
            }
        }
    }

    pub(crate) fn put_silence(&mut self, id: &str, silence: &str, ends_at_ms: u64) {
        self.silences
            .insert(id.to_string(), (silence.to_string(), ends_at_ms));
    }

    pub(crate) fn expire_silence(&mut self, id: &str) -> bool {
        let now = wall_ms();
        self.silences.remove(id).is_some_and(|(_, ends)| ends > now)
    }

    pub(crate) fn silences(&mut self, now_ms: u64) -> Vec<String> {
        self.silences.retain(|_, (_, ends)| *ends > now_ms);
        // By end time, then id, as the Redis store lists them.
        let mut running: Vec<(u64, &String, &String)> = self
            .silences
            .iter()
            .map(|(id, (s, ends))| (*ends, id, s))
            .collect();
        running.sort();
        running.into_iter().map(|(_, _, s)| s.clone()).collect()
    }

    pub(crate) fn legacy(&self, keys: &[String]) -> Vec<Option<String>> {
        keys.iter().map(|k| self.legacy.get(k).cloned()).collect()
    }

    pub(crate) fn delete_legacy(&mut self, keys: &[String]) {
        for k in keys {
            self.legacy.remove(k);
        }
    }

    pub(crate) fn list(&self, prefix: &str) -> Vec<(String, String)> {
        let now = wall_ms();
        let mut out: Vec<(String, String)> = self
            .states
            .iter()
            .filter(|(k, (_, expires))| k.starts_with(prefix) && *expires > now)
            .map(|(k, (s, _))| (k.clone(), s.clone()))
            .collect();
        out.sort();
        out
    }

    pub(crate) fn append_history(&mut self, stream: &str, entries: &[String], max_len: usize) {
        let now = wall_ms();
        let history = self.history.entry(stream.to_string()).or_default();
        history.extend(entries.iter().map(|e| (now, e.clone())));
        while history.len() > max_len.max(1) {
            history.pop_front();
        }
    }

    pub(crate) fn history(&self, stream: &str, since_ms: u64) -> Vec<(u64, String)> {
        self.history.get(stream).map_or_else(Vec::new, |h| {
            h.iter()
                .filter(|(at, _)| *at >= since_ms)
                .cloned()
                .collect()
        })
    }

    /// Stores a state under a pre-versioning key, as an old agent did (for
    /// migration tests of embedders).
    pub(crate) fn put_legacy(&mut self, key: &str, state: &str) {
        self.legacy.insert(key.to_string(), state.to_string());
    }
}

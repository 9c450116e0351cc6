//! The state keys of the monitors due, lent to a tick's state read and
//! given back after: copies kept while the same monitors are due (at
//! every tick when they share an interval), so that the read takes them
//! whole instead of a move out of every monitor and back; moved only when
//! the monitors due change. A change of the monitors' list forgets them.

use super::plan::Scheduled;

#[derive(Default)]
pub(super) struct DueKeys {
    /// The copies (with the read's other keys appended while lent).
    keys: Vec<String>,
    /// The copies' length: the keys of the monitors of `of`.
    len: usize,
    /// The monitors (indexes) the copies are of.
    of: Vec<usize>,
    /// The copies still name those monitors' keys: cleared by any change
    /// of the monitors' list ([`DueKeys::forget`]).
    valid: bool,
    /// The monitors due at the last tick whose keys were moved: copies
    /// are made once the same monitors were due twice in a row.
    last_due: Vec<usize>,
    /// The keys lent now were moved out of their monitors.
    moved: bool,
    /// The vector of moved keys, emptied, for the next time.
    spare: Vec<String>,
}

impl DueKeys {
    /// The monitors' list changed (reload, groups added or removed): an
    /// index may now be another monitor's.
    pub(super) fn forget(&mut self) {
        self.valid = false;
        self.last_due.clear();
        self.keys.clear();
        self.len = 0;
    }

    /// The keys of the monitors `due`, in their order: the copies made
    /// for the same monitors at an earlier tick, or moved out of them.
    pub(super) fn lend(&mut self, due: &[usize], monitors: &mut [Scheduled]) -> Vec<String> {
        if self.valid && self.of == due {
            return std::mem::take(&mut self.keys);
        }
        if self.last_due == due {
            // The same monitors due twice in a row: from now on, copies.
            let mut keys = std::mem::take(&mut self.keys);
            keys.clear();
            for &i in due {
                keys.extend(monitors[i].keys.iter().cloned());
            }
            self.of.clear();
            self.of.extend_from_slice(due);
            self.len = keys.len();
            self.valid = true;
            return keys;
        }
        self.last_due.clear();
        self.last_due.extend_from_slice(due);
        self.moved = true;
        let mut keys = std::mem::take(&mut self.spare);
        for &i in due {
            keys.append(&mut monitors[i].keys);
        }
        keys
    }

    /// Returns the keys [`DueKeys::lend`] gave for `due` (and whatever was
    /// appended after them): to their monitors, or kept as the copies for
    /// the next tick. Calling it again does nothing.
    pub(super) fn give_back(
        &mut self,
        due: &[usize],
        monitors: &mut [Scheduled],
        mut keys: Vec<String>,
    ) {
        if !std::mem::take(&mut self.moved) {
            keys.truncate(self.len);
            self.keys = keys;
            return;
        }
        let mut lent = keys.drain(..);
        for &i in due {
            let s = &mut monitors[i];
            // One run per key.
            let count = s.runs.len();
            s.keys.extend(lent.by_ref().take(count));
        }
        drop(lent);
        self.spare = keys;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::monitors::parse_monitors;

    fn monitors(keys: &[&str]) -> Vec<Scheduled> {
        let yaml = "version: 1\nmonitors:\n  - metric: errors\n    interval: 10s\n    triggers:\n      - {threshold: 5, to: [a@example.com]}\n";
        let file = parse_monitors(yaml, "t", Duration::from_secs(3600)).unwrap();
        let keys = keys.iter().map(|k| vec![k.to_string()]);
        keys.map(|k| Scheduled::new(&file.monitors[0], k, 0))
            .collect()
    }

    fn keys_of(monitors: &[Scheduled]) -> Vec<String> {
        monitors.iter().flat_map(|s| s.keys.clone()).collect()
    }

    /// Moved the first time, copied the second, lent whole after; what the
    /// read appended is not kept; a change of the monitors' list forgotten
    /// gives the new monitors' keys, not the copies of the old ones.
    #[test]
    fn keys_are_lent_whole_and_forgotten_with_the_monitors() {
        let mut list = monitors(&["a", "b"]);
        let mut due = DueKeys::default();
        let all = [0, 1];
        for tick in 0..3 {
            let mut keys = due.lend(&all, &mut list);
            assert_eq!(keys, ["a", "b"], "tick {tick}");
            if tick == 0 {
                assert!(keys_of(&list).is_empty(), "moved out the first time");
            }
            keys.push("retired".into());
            due.give_back(&all, &mut list, keys);
            assert_eq!(keys_of(&list), ["a", "b"], "tick {tick}");
        }
        // Another monitor at index 1 (a group removed, another made).
        list[1].keys = vec!["c".into()];
        due.forget();
        let keys = due.lend(&all, &mut list);
        assert_eq!(keys, ["a", "c"]);
        due.give_back(&all, &mut list, keys);
        assert_eq!(keys_of(&list), ["a", "c"]);
    }
}

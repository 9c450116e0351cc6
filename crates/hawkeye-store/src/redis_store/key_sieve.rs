//! A sieve of a few keys, for passing over the many keys that are none of
//! them without hashing each into a map (`alerts.rs`: the states found
//! among every trigger's key, each tick).

/// A bit per fingerprint of some keys (at least 16 bits per key): a key
/// whose bit is clear is none of them. Not a defence against chosen keys,
/// only a shortcut: a set bit sends the key to the exact lookup.
pub(super) struct Sieve(Vec<u64>);

impl Sieve {
    pub(super) fn of<'a>(keys: impl ExactSizeIterator<Item = &'a str>) -> Sieve {
        let words = (keys.len() * 16).div_ceil(64).next_power_of_two();
        let mut sieve = Sieve(vec![0; words]);
        for k in keys {
            let (word, bit) = sieve.slot(k);
            sieve.0[word] |= bit;
        }
        sieve
    }

    pub(super) fn may_hold(&self, key: &str) -> bool {
        let (word, bit) = self.slot(key);
        self.0[word] & bit != 0
    }

    /// Two 8-byte words of the key mixed with its length (FxHash's mix):
    /// the middle one, where keys of one format differ most (the monitor
    /// in a trigger's key), and the last. Cheaper than hashing the whole
    /// key, which is what lets the sieve pay for itself; keys that differ
    /// elsewhere only pass more often.
    fn slot(&self, key: &str) -> (usize, u64) {
        let mix = |h: u64, word: u64| (h.rotate_left(5) ^ word).wrapping_mul(0x517c_c1b7_2722_0a95);
        let bytes = key.as_bytes();
        let word = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
        let len = bytes.len();
        let h = match len {
            0..8 => mix(
                len as u64,
                bytes.iter().fold(0, |t, &b| t << 8 | u64::from(b)),
            ),
            _ => mix(mix(len as u64, word(len / 2 - 4)), word(len - 8)),
        };
        let bits = h >> 32;
        (
            ((bits >> 6) as usize) & (self.0.len() - 1),
            1 << (bits & 63),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_sieved_is_held_and_most_others_are_not() {
        let mut keys: Vec<String> = (0..97)
            .map(|i| format!("v2|svc|env|m=n{i}|c|sum|||#0"))
            .collect();
        keys.extend(["", "a", "12345678"].map(String::from));
        let sieve = Sieve::of(keys.iter().map(String::as_str));
        assert!(keys.iter().all(|k| sieve.may_hold(k)), "no key is missed");
        let others = (100..10_100)
            .map(|i| format!("v2|svc|env|m=n{i}|c|sum|||#0"))
            .filter(|k| sieve.may_hold(k))
            .count();
        // 100 keys in 2 048 bits: about 5% of other keys pass.
        assert!(others < 2_000, "{others} of 10 000 passed");
        let empty = Sieve::of(std::iter::empty());
        assert!(!empty.may_hold("a"));
    }
}

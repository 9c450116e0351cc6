//! The packed encoding of one series' per-minute rollups for one day: what a
//! closed hour is compacted into (docs/storage.md, "Compaction"). One codec,
//! in Rust: the compaction encodes, reads decode, Redis only stores bytes.
//!
//! Exact: every number reads back bit for bit. Small: a number that is an
//! integer (within ±2^53) is stored as the zigzag varint of its difference
//! from the same field's previous integer, so a counter of small, similar
//! counts costs about one byte; any other number costs a marker byte and
//! its 8 bytes. Minutes are stored as the gap since the previous one (one
//! byte). A counter with a point every minute of a day takes about 2.9 KB.
//!
//! Layout: format byte (1), kind byte (`c`, `g` or `d`), varint generation
//! (bumped by every compaction, so that a compare-and-set sees any change),
//! varint count of minutes, then per minute: varint gap (minute of the day
//! minus the previous minus one; the first counts from -1), then its
//! numbers: a counter its sum; a gauge last, min, max, sum, count; a
//! distribution count, sum, min, max, zero weight, then its positive and
//! negative sketch buckets, each as a varint count followed by (zigzag
//! index gap, weight) pairs.

use std::collections::BTreeMap;

use hawkeye_protocol::MetricKind;

use crate::aggregate::{Aggregate, DistributionStats, GaugeStats};
use crate::sketch::Sketch;

const FORMAT: u8 = 1;
/// Minutes in a day: the largest minute index is one less.
pub(crate) const MINUTES_PER_DAY: i64 = 1440;
/// Integers beyond this are not all exact in an `f64`: stored raw.
const EXACT_INTEGERS: f64 = 9_007_199_254_740_992.0;

/// One series' rollups for one day.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Day {
    pub generation: u64,
    /// By minute of the day (0–1439).
    pub minutes: BTreeMap<i64, Aggregate>,
}

/// Bytes that are not a day this codec wrote.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("corrupt rollup day string: {0}")]
pub(crate) struct BadDay(&'static str);

/// Encodes `day` for a series of `kind` (sets are not encoded: their
/// rollups stay per-minute HyperLogLogs).
pub(crate) fn encode(kind: MetricKind, day: &Day) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + day.minutes.len() * 3);
    out.push(FORMAT);
    out.push(kind_byte(kind));
    put_varint(&mut out, day.generation);
    put_varint(&mut out, day.minutes.len() as u64);
    let mut nums = Numbers::default();
    let mut previous = -1;
    for (minute, agg) in &day.minutes {
        put_varint(&mut out, (minute - previous - 1) as u64);
        previous = *minute;
        match agg {
            Aggregate::Counter(v) => nums.put(&mut out, 0, *v),
            Aggregate::Gauge(g) => {
                for (i, v) in [g.last, g.min, g.max, g.sum, g.count].iter().enumerate() {
                    nums.put(&mut out, i, *v);
                }
            }
            Aggregate::Distribution(d) => {
                let fixed = [d.count, d.sum, d.min, d.max, d.sketch.zero];
                for (i, v) in fixed.iter().enumerate() {
                    nums.put(&mut out, i, *v);
                }
                put_buckets(&mut out, &mut nums, 5, &d.sketch.positive);
                put_buckets(&mut out, &mut nums, 6, &d.sketch.negative);
            }
            Aggregate::Set(_) => {}
        }
    }
    out
}

/// Decodes what [`encode`] wrote.
pub(crate) fn decode(bytes: &[u8]) -> Result<(MetricKind, Day), BadDay> {
    let mut minutes = BTreeMap::new();
    let (kind, generation) = decode_each(bytes, |minute, agg| {
        minutes.insert(minute, agg);
    })?;
    Ok((
        kind,
        Day {
            generation,
            minutes,
        },
    ))
}

/// Decodes what [`encode`] wrote, handing each minute (of the day, in
/// order) and its aggregate to `each` rather than building a map: a read
/// that only folds a day's minutes (a 30-day window) needs no map of 1 440
/// entries per series and day. Returns the kind and the generation. On an
/// error, `each` may have seen the minutes before it.
pub(crate) fn decode_each(
    bytes: &[u8],
    mut each: impl FnMut(i64, Aggregate),
) -> Result<(MetricKind, u64), BadDay> {
    let mut r = Reader { bytes, at: 0 };
    if r.byte()? != FORMAT {
        return Err(BadDay("unknown format"));
    }
    let kind = match r.byte()? {
        b'c' => MetricKind::Counter,
        b'g' => MetricKind::Gauge,
        b'd' => MetricKind::Distribution,
        _ => return Err(BadDay("unknown kind")),
    };
    let generation = r.varint()?;
    let count = r.varint()?;
    if count > MINUTES_PER_DAY as u64 {
        return Err(BadDay("more minutes than a day has"));
    }
    let mut nums = Numbers::default();
    let mut previous: i64 = -1;
    for _ in 0..count {
        let gap = r.varint()?;
        let minute = previous
            .checked_add(1)
            .and_then(|m| m.checked_add(i64::try_from(gap).ok()?))
            .filter(|m| *m < MINUTES_PER_DAY)
            .ok_or(BadDay("minute out of the day"))?;
        previous = minute;
        each(minute, get_aggregate(kind, &mut r, &mut nums)?);
    }
    if r.at != bytes.len() {
        return Err(BadDay("trailing bytes"));
    }
    Ok((kind, generation))
}

/// One minute's numbers, for a series of `kind`.
fn get_aggregate(
    kind: MetricKind,
    r: &mut Reader,
    nums: &mut Numbers,
) -> Result<Aggregate, BadDay> {
    Ok(match kind {
        MetricKind::Counter => Aggregate::Counter(nums.get(r, 0)?),
        MetricKind::Gauge => {
            let mut v = [0.0; 5];
            for (i, slot) in v.iter_mut().enumerate() {
                *slot = nums.get(r, i)?;
            }
            Aggregate::Gauge(GaugeStats {
                last: v[0],
                min: v[1],
                max: v[2],
                sum: v[3],
                count: v[4],
            })
        }
        _ => Aggregate::Distribution(Box::new(get_distribution(r, nums)?)),
    })
}

fn kind_byte(kind: MetricKind) -> u8 {
    match kind {
        MetricKind::Counter => b'c',
        MetricKind::Gauge => b'g',
        MetricKind::Distribution | MetricKind::Set => b'd',
    }
}

fn get_distribution(r: &mut Reader, nums: &mut Numbers) -> Result<DistributionStats, BadDay> {
    let mut v = [0.0; 5];
    for (i, slot) in v.iter_mut().enumerate() {
        *slot = nums.get(r, i)?;
    }
    Ok(DistributionStats {
        count: v[0],
        sum: v[1],
        min: v[2],
        max: v[3],
        sketch: Sketch {
            zero: v[4],
            positive: get_buckets(r, nums, 5)?,
            negative: get_buckets(r, nums, 6)?,
        },
    })
}

fn put_buckets(out: &mut Vec<u8>, nums: &mut Numbers, field: usize, b: &BTreeMap<i32, f64>) {
    put_varint(out, b.len() as u64);
    let mut previous: i64 = 0;
    for (index, weight) in b {
        put_varint(out, zigzag(i64::from(*index) - previous));
        previous = i64::from(*index);
        nums.put(out, field, *weight);
    }
}

fn get_buckets(
    r: &mut Reader,
    nums: &mut Numbers,
    field: usize,
) -> Result<BTreeMap<i32, f64>, BadDay> {
    let count = r.varint()?;
    if count > r.bytes.len() as u64 {
        return Err(BadDay("more buckets than bytes"));
    }
    let mut buckets = BTreeMap::new();
    let mut previous: i64 = 0;
    for _ in 0..count {
        let index = previous
            .checked_add(unzigzag(r.varint()?))
            .ok_or(BadDay("bucket index out of range"))?;
        previous = index;
        let index = i32::try_from(index).map_err(|_| BadDay("bucket index out of range"))?;
        buckets.insert(index, nums.get(r, field)?);
    }
    Ok(buckets)
}

/// The previous integer of each field, which the next is stored against.
#[derive(Default)]
struct Numbers {
    previous: [i64; 7],
}

impl Numbers {
    fn put(&mut self, out: &mut Vec<u8>, field: usize, v: f64) {
        let integer =
            v.fract() == 0.0 && v.abs() <= EXACT_INTEGERS && !(v == 0.0 && v.is_sign_negative());
        if integer {
            let i = v as i64;
            put_varint(out, zigzag(i - self.previous[field]) << 1);
            self.previous[field] = i;
        } else {
            put_varint(out, 1);
            out.extend_from_slice(&v.to_le_bytes());
        }
    }

    fn get(&mut self, r: &mut Reader, field: usize) -> Result<f64, BadDay> {
        let tag = r.varint()?;
        if tag == 1 {
            let raw = r.take(8)?;
            let mut b = [0; 8];
            b.copy_from_slice(raw);
            return Ok(f64::from_le_bytes(b));
        }
        if tag & 1 == 1 {
            return Err(BadDay("unknown number tag"));
        }
        let i = self.previous[field]
            .checked_add(unzigzag(tag >> 1))
            .filter(|i| (*i as f64).abs() <= EXACT_INTEGERS)
            .ok_or(BadDay("integer out of range"))?;
        self.previous[field] = i;
        Ok(i as f64)
    }
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8, BadDay> {
        let b = *self.bytes.get(self.at).ok_or(BadDay("truncated"))?;
        self.at += 1;
        Ok(b)
    }

    fn take(&mut self, n: usize) -> Result<&[u8], BadDay> {
        let end = self.at.checked_add(n).ok_or(BadDay("truncated"))?;
        let slice = self.bytes.get(self.at..end).ok_or(BadDay("truncated"))?;
        self.at = end;
        Ok(slice)
    }

    fn varint(&mut self) -> Result<u64, BadDay> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(BadDay("varint too long"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn roundtrip(kind: MetricKind, day: &Day) -> Day {
        let bytes = encode(kind, day);
        let (k, back) = decode(&bytes).unwrap();
        assert_eq!(k, kind);
        back
    }

    /// Bit-for-bit equality (NaN and -0.0 included).
    fn same_bits(a: &Aggregate, b: &Aggregate) -> bool {
        let bits = |agg: &Aggregate| -> Vec<u64> {
            let mut v = Vec::new();
            match agg {
                Aggregate::Counter(c) => v.push(c.to_bits()),
                Aggregate::Gauge(g) => {
                    v.extend([g.last, g.min, g.max, g.sum, g.count].map(f64::to_bits))
                }
                Aggregate::Distribution(d) => {
                    v.extend([d.count, d.sum, d.min, d.max, d.sketch.zero].map(f64::to_bits));
                    for (i, w) in d.sketch.positive.iter().chain(&d.sketch.negative) {
                        v.extend([*i as u64, w.to_bits()]);
                    }
                    v.push(d.sketch.positive.len() as u64);
                }
                Aggregate::Set(_) => {}
            }
            v
        };
        bits(a) == bits(b)
    }

    #[test]
    fn a_counter_day_of_small_counts_fits_in_three_kilobytes() {
        let day = Day {
            generation: 7,
            minutes: (0..MINUTES_PER_DAY)
                .map(|m| (m, Aggregate::Counter((100 + m % 17) as f64)))
                .collect(),
        };
        let bytes = encode(MetricKind::Counter, &day);
        assert!(bytes.len() <= 3 * 1024, "{} bytes", bytes.len());
        assert_eq!(roundtrip(MetricKind::Counter, &day), day);
    }

    #[test]
    fn odd_numbers_read_back_bit_for_bit() {
        let odd = [
            0.1,
            -0.0,
            f64::MAX,
            f64::MIN_POSITIVE,
            1e200,
            -1e200,
            2f64.powi(53),
            2f64.powi(53) + 2.0,
            -2f64.powi(60),
        ];
        let day = Day {
            generation: 0,
            minutes: odd
                .iter()
                .enumerate()
                .map(|(m, v)| (m as i64 * 100, Aggregate::Counter(*v)))
                .collect(),
        };
        let back = roundtrip(MetricKind::Counter, &day);
        for (a, b) in day.minutes.values().zip(back.minutes.values()) {
            assert!(same_bits(a, b), "{a:?} {b:?}");
        }
    }

    #[test]
    fn corrupt_bytes_are_errors_not_panics() {
        let day = Day {
            generation: 1,
            minutes: BTreeMap::from([(5, Aggregate::Counter(3.0))]),
        };
        let bytes = encode(MetricKind::Counter, &day);
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut extra = bytes.clone();
        extra.push(0);
        assert!(decode(&extra).is_err());
        assert!(decode(&[2, b'c', 0, 0]).is_err(), "unknown format");
        assert!(
            decode(&[1, b'c', 0, 1, 0xff, 0x0b, 0]).is_err(),
            "minute 1535"
        );
    }

    fn number() -> impl Strategy<Value = f64> {
        prop_oneof![
            (-1000i64..1000).prop_map(|i| i as f64),
            any::<i64>().prop_map(|i| i as f64),
            any::<f64>(),
            Just(-0.0),
        ]
    }

    fn aggregate(kind: u8) -> BoxedStrategy<Aggregate> {
        match kind {
            0 => number().prop_map(Aggregate::Counter).boxed(),
            1 => prop::array::uniform5(number())
                .prop_map(|[last, min, max, sum, count]| {
                    Aggregate::Gauge(GaugeStats {
                        last,
                        min,
                        max,
                        sum,
                        count,
                    })
                })
                .boxed(),
            _ => (
                prop::array::uniform5(number()),
                prop::collection::btree_map(-3000i32..3000, number(), 0..20),
                prop::collection::btree_map(any::<i32>(), number(), 0..5),
            )
                .prop_map(|([count, sum, min, max, zero], positive, negative)| {
                    Aggregate::Distribution(Box::new(DistributionStats {
                        count,
                        sum,
                        min,
                        max,
                        sketch: Sketch {
                            positive,
                            negative,
                            zero,
                        },
                    }))
                })
                .boxed(),
        }
    }

    proptest! {
        // Each case encodes up to a few hundred aggregates: 64 cases keep
        // the debug-build test under a few seconds.
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn any_day_reads_back_exactly(
            kind in 0u8..3,
            generation in any::<u64>(),
            seed in prop::collection::btree_map(0i64..MINUTES_PER_DAY, 0u8..1, 0..200),
            values in prop::collection::vec(aggregate(0), 200),
            gauges in prop::collection::vec(aggregate(1), 200),
            dists in prop::collection::vec(aggregate(2), 50),
        ) {
            let pick = |i: usize| match kind {
                0 => values[i].clone(),
                1 => gauges[i].clone(),
                _ => dists[i % dists.len()].clone(),
            };
            let day = Day {
                generation,
                minutes: seed.keys().enumerate().map(|(i, m)| (*m, pick(i))).collect(),
            };
            let kind = [MetricKind::Counter, MetricKind::Gauge, MetricKind::Distribution][kind as usize];
            let back = roundtrip(kind, &day);
            prop_assert_eq!(back.generation, day.generation);
            prop_assert_eq!(back.minutes.len(), day.minutes.len());
            for ((ma, a), (mb, b)) in day.minutes.iter().zip(&back.minutes) {
                prop_assert_eq!(ma, mb);
                prop_assert!(same_bits(a, b), "{:?} {:?}", a, b);
            }
        }

        #[test]
        fn any_bytes_decode_or_fail_cleanly(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode(&bytes);
        }
    }
}

//! A mergeable quantile sketch with bounded relative error (the DDSketch idea):
//! each observation falls in a bucket whose bounds grow geometrically by
//! `GAMMA`, so any quantile read back is within `RELATIVE_ACCURACY` of the true
//! value. Buckets are counts, so merging two sketches (two seconds, two
//! servers) is adding counts: exact and order-independent, which is what lets
//! Redis store them with `HINCRBYFLOAT`.

use std::collections::BTreeMap;

/// Relative accuracy of every quantile: 1%.
pub const RELATIVE_ACCURACY: f64 = 0.01;
/// Bucket growth factor, (1 + α) / (1 − α).
pub const GAMMA: f64 = (1.0 + RELATIVE_ACCURACY) / (1.0 - RELATIVE_ACCURACY);
/// Magnitudes below this count as zero.
pub const MIN_MAGNITUDE: f64 = 1e-9;

/// Bucket counts for positive values, negative values (by magnitude) and zero.
/// Counts are `f64` because sampled observations weigh `1 / sample_rate`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sketch {
    pub positive: BTreeMap<i32, f64>,
    pub negative: BTreeMap<i32, f64>,
    pub zero: f64,
}

/// The bucket index of a magnitude `>= MIN_MAGNITUDE`.
pub fn bucket_index(magnitude: f64) -> i32 {
    (magnitude.ln() / GAMMA.ln()).ceil() as i32
}

/// The value a bucket stands for: the point whose relative distance to both
/// bounds is `RELATIVE_ACCURACY`.
pub fn bucket_value(index: i32) -> f64 {
    2.0 * GAMMA.powi(index) / (GAMMA + 1.0)
}

impl Sketch {
    pub fn add(&mut self, value: f64, weight: f64) {
        let magnitude = value.abs();
        if magnitude < MIN_MAGNITUDE {
            self.zero += weight;
        } else if value > 0.0 {
            *self.positive.entry(bucket_index(magnitude)).or_default() += weight;
        } else {
            *self.negative.entry(bucket_index(magnitude)).or_default() += weight;
        }
    }

    pub fn merge(&mut self, other: &Sketch) {
        for (i, c) in &other.positive {
            *self.positive.entry(*i).or_default() += c;
        }
        for (i, c) in &other.negative {
            *self.negative.entry(*i).or_default() += c;
        }
        self.zero += other.zero;
    }

    pub fn count(&self) -> f64 {
        self.zero + self.positive.values().sum::<f64>() + self.negative.values().sum::<f64>()
    }

    /// The `q`-quantile (`0 <= q <= 1`), or `None` for an empty sketch.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let count = self.count();
        if count <= 0.0 {
            return None;
        }
        // The rank (0-based) of the wanted observation, as in DDSketch.
        let rank = q.clamp(0.0, 1.0) * (count - 1.0);
        let mut seen = 0.0;
        // Most negative first: the largest magnitude index among negatives.
        for (i, c) in self.negative.iter().rev() {
            seen += c;
            if seen > rank {
                return Some(-bucket_value(*i));
            }
        }
        seen += self.zero;
        if seen > rank {
            return Some(0.0);
        }
        for (i, c) in &self.positive {
            seen += c;
            if seen > rank {
                return Some(bucket_value(*i));
            }
        }
        // Rounding left the rank past the last bucket: it is the maximum.
        self.positive
            .last_key_value()
            .map(|(i, _)| bucket_value(*i))
            .or(Some(0.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exact_quantile(sorted: &[f64], q: f64) -> f64 {
        let rank = (q * (sorted.len() - 1) as f64).floor() as usize;
        sorted[rank]
    }

    #[test]
    fn quantiles_within_one_percent() {
        let values: Vec<f64> = (1..=10_000).map(|i| (i as f64) * 0.37 + 0.001).collect();
        let mut s = Sketch::default();
        for v in &values {
            s.add(*v, 1.0);
        }
        for q in [0.0, 0.5, 0.9, 0.95, 0.99, 1.0] {
            let want = exact_quantile(&values, q);
            let got = s.quantile(q).unwrap();
            assert!(
                ((got - want) / want).abs() <= RELATIVE_ACCURACY + 1e-12,
                "q={q} want {want} got {got}"
            );
        }
    }

    #[test]
    fn merging_is_adding() {
        let (mut a, mut b, mut all) = (Sketch::default(), Sketch::default(), Sketch::default());
        for i in 0..1000 {
            let v = (i as f64 - 300.0) * 1.7;
            if i % 2 == 0 {
                a.add(v, 1.0)
            } else {
                b.add(v, 1.0)
            }
            all.add(v, 1.0);
        }
        let mut merged = b.clone();
        merged.merge(&a);
        assert_eq!(merged, all);
        assert_eq!(merged.count(), 1000.0);
    }

    #[test]
    fn negative_and_zero_values() {
        let mut s = Sketch::default();
        for v in [-100.0, -10.0, 0.0, 10.0, 100.0] {
            s.add(v, 1.0);
        }
        assert!((s.quantile(0.0).unwrap() + 100.0).abs() <= 1.0);
        assert_eq!(s.quantile(0.5).unwrap(), 0.0);
        assert!((s.quantile(1.0).unwrap() - 100.0).abs() <= 1.0);
    }
}

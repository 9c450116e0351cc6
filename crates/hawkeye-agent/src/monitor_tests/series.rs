//! The compact notation of input series (`docs/monitor-tests.md`), as
//! promtool reads it, so that series copied from Prometheus rule tests mean
//! the same here:
//!
//! - `5` one value; `_` one step without data;
//! - `a+bxn` is `a a+b … a+n·b` and `a-bxn` is `a a-b … a-n·b` (n + 1
//!   values: the first, then n more); `axn` is `a+0xn`, so `5x3` is four 5s;
//! - `_xn` is n steps without data.

/// Why a series does not parse: the item and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("series item {item:?}: {reason}")]
pub struct SeriesError {
    pub item: String,
    pub reason: String,
}

/// The most values one series may expand to: a bound on what a test file
/// can make the tool allocate (a day of one-second steps is 86 400).
pub const MAX_VALUES: usize = 1_000_000;

/// Expands `text` into one value per step (`None`: no data that step).
pub fn parse_series(text: &str) -> Result<Vec<Option<f64>>, SeriesError> {
    let mut values = Vec::new();
    for item in text.split_whitespace() {
        let err = |reason: &str| SeriesError {
            item: item.to_string(),
            reason: reason.to_string(),
        };
        let (start, step, times) = match item.rsplit_once('x') {
            None => (item, "0", None),
            Some((head, n)) => {
                let n: usize = n
                    .parse()
                    .map_err(|_| err("the count after x must be a whole number"))?;
                let (start, step) = split_step(head);
                (start, step, Some(n))
            }
        };
        if start == "_" {
            if step != "0" {
                return Err(err("`_` (no data) takes no increment"));
            }
            let n = times.unwrap_or(1);
            if values.len().saturating_add(n) > MAX_VALUES {
                return Err(err(&format!("more than {MAX_VALUES} values")));
            }
            values.extend(std::iter::repeat_n(None, n));
            continue;
        }
        let a =
            number(start).ok_or_else(|| err("not a number (write e.g. 5, 1.5, _, 5x3, 1+2x4)"))?;
        let b = number(step).ok_or_else(|| err("the increment is not a number"))?;
        let n = times.map_or(1, |n| n.saturating_add(1));
        if values.len().saturating_add(n) > MAX_VALUES {
            return Err(err(&format!("more than {MAX_VALUES} values")));
        }
        values.extend((0..n).map(|k| Some(a + b * k as f64)));
    }
    Ok(values)
}

/// `a+b` → (`a`, `b`), `a-b` → (`a`, `-b`), `a` → (`a`, `0`). A sign at
/// the start, or after an exponent's `e`, belongs to the number.
fn split_step(head: &str) -> (&str, &str) {
    let bytes = head.as_bytes();
    for i in 1..bytes.len() {
        let c = bytes[i];
        if (c == b'+' || c == b'-') && !matches!(bytes[i - 1], b'e' | b'E') {
            // "-" stays with the increment so that it parses negative.
            let step = if c == b'-' {
                &head[i..]
            } else {
                &head[i + 1..]
            };
            return (&head[..i], step);
        }
    }
    (head, "0")
}

fn number(s: &str) -> Option<f64> {
    s.parse::<f64>().ok().filter(|v| v.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(s: &str) -> Vec<Option<f64>> {
        parse_series(s).unwrap()
    }

    #[test]
    fn promtool_expansions() {
        assert_eq!(values("1 2 _ 3"), [Some(1.0), Some(2.0), None, Some(3.0)]);
        assert_eq!(values("5x3"), [Some(5.0); 4], "axn is n + 1 values");
        assert_eq!(values("_x3"), [None; 3], "_xn is n steps");
        assert_eq!(
            values("1+2x3"),
            [Some(1.0), Some(3.0), Some(5.0), Some(7.0)]
        );
        assert_eq!(values("10-5x2"), [Some(10.0), Some(5.0), Some(0.0)]);
        assert_eq!(values("-1-1x1"), [Some(-1.0), Some(-2.0)]);
        assert_eq!(values("1e-3 2E+1"), [Some(0.001), Some(20.0)]);
        assert_eq!(values("0 5x2 0x1").len(), 1 + 3 + 2);
        assert_eq!(values("  "), []);
    }

    #[test]
    fn bad_items_are_named() {
        for (text, item) in [
            ("1 two 3", "two"),
            ("5xa", "5xa"),
            ("_+1x3", "_+1x3"),
            ("1+zx2", "1+zx2"),
            ("inf", "inf"),
            ("5x-1", "5x-1"),
        ] {
            let e = parse_series(text).unwrap_err();
            assert_eq!(e.item, item, "{text}: {e}");
        }
    }

    #[test]
    fn a_hostile_count_is_refused_before_allocating() {
        let e = parse_series("1x18446744073709551615").unwrap_err();
        assert!(e.reason.contains("more than"), "{e}");
        let e = parse_series("_x999999 _x2").unwrap_err();
        assert_eq!(e.item, "_x2");
    }
}

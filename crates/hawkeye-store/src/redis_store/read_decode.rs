//! The answers of round trip 2, decoded in place: the read script's one
//! string per call cut into each hash's fields, a day string's rollups,
//! and each field's value put into the aggregate of its second. A series
//! read from its minute hashes alone, in one shard, has its seconds folded
//! into its window as they come; others go through a map that orders and
//! merges them. docs/storage.md ("Reads").

use std::collections::btree_map::{BTreeMap, Entry};

use hawkeye_protocol::MetricKind;
use redis::Value;

use super::field::{BadField, Field};
use super::read_job::{Bucket, Fields, ReadJob};
use super::reply::as_str;
use crate::aggregate::Aggregate;
use crate::error::StoreError;
use crate::rollup_codec;
use crate::window::SecondsFold;

/// What one job got: a hash's fields as the read script wrote them, or a
/// day string's bytes (`None`: no such key).
#[derive(Clone, Copy)]
pub(super) enum Answer<'a> {
    Text(&'a str),
    Bytes(Option<&'a [u8]>),
}

/// Cuts one call's reply into the answers of its jobs.
pub(super) fn split_reply<'a>(
    call: &[usize],
    jobs: &[ReadJob],
    reply: &'a Value,
    answers: &mut [Answer<'a>],
) -> Result<(), StoreError> {
    let unexpected = || StoreError::Protocol(format!("a read answered {reply:?}"));
    if call
        .first()
        .is_some_and(|&j| matches!(jobs[j].bucket, Bucket::Day(_)))
    {
        let Value::Array(values) = reply else {
            return Err(unexpected());
        };
        if values.len() != call.len() {
            return Err(unexpected());
        }
        for (&j, value) in call.iter().zip(values) {
            answers[j] = Answer::Bytes(match value {
                Value::BulkString(bytes) => Some(bytes),
                _ => None,
            });
        }
        return Ok(());
    }
    let text = as_str(reply).ok_or_else(unexpected)?;
    let mut parts = Cut::new(text, b';');
    for &j in call.iter() {
        answers[j] = Answer::Text(parts.next().ok_or_else(|| {
            StoreError::Protocol("the read script answered too few hashes".into())
        })?);
    }
    Ok(())
}

/// Decodes the answer of a minute hash of a series read in order
/// ([`ReadJob::in_order`]): its seconds, gathered by second of the minute
/// in `minute` (a whole hash answers in no order), join `fold` in
/// ascending order.
pub(super) fn decode_in_order(
    kind: MetricKind,
    job: &ReadJob,
    answer: Answer,
    minute: &mut [Option<Aggregate>],
    fold: &mut SecondsFold,
) -> Result<(), StoreError> {
    let (Answer::Text(text), Bucket::Minute(m)) = (answer, job.bucket) else {
        return Err(StoreError::Protocol(
            "a read in order got a rollup answer".into(),
        ));
    };
    decode_fields(job, text, |_, field, value| {
        let slot = minute.get_mut(field.second as usize).ok_or(BadField)?;
        let agg = match slot {
            Some(agg) => agg,
            None => slot.insert(Field::empty(kind).ok_or(BadField)?),
        };
        field.apply(value, agg)
    })?;
    let first = (job.span.0 - m * 60).clamp(0, 59) as usize;
    let last = (job.span.1 - m * 60).clamp(0, 59) as usize;
    for slot in minute.get_mut(first..=last).into_iter().flatten() {
        if let Some(agg) = slot.take() {
            fold.push(agg);
        }
    }
    Ok(())
}

/// Decodes one job's answer into aggregates inside the job's span, keyed
/// by the first second each covers (a second, or a rollup's minute).
pub(super) fn decode_answer(
    kind: MetricKind,
    job: &ReadJob,
    answer: Answer,
    out: &mut BTreeMap<i64, Aggregate>,
) -> Result<(), StoreError> {
    let text = match answer {
        Answer::Text(text) => text,
        Answer::Bytes(None) => return Ok(()),
        Answer::Bytes(Some(bytes)) => return decode_day(job, bytes, out),
    };
    decode_fields(job, text, |second, field, value| {
        let agg = match out.entry(second) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => e.insert(Field::empty(kind).ok_or(BadField)?),
        };
        field.apply(value, agg)
    })
}

/// Calls `put` with each field of a hash's answer inside the job's span:
/// the first second its value covers (a second, or a rollup's minute), the
/// field, and its value.
fn decode_fields(
    job: &ReadJob,
    text: &str,
    mut put: impl FnMut(i64, Field, f64) -> Result<(), BadField>,
) -> Result<(), StoreError> {
    let bad = |what: &str| StoreError::Protocol(format!("unexpected field {what:?}"));
    let (bucket, seconds) = job.bucket.unit();
    let mut one = |field: Field, value: &str| {
        let at = bucket * 60 + field.second;
        if at < job.span.0 || at > job.span.1 {
            return Ok(());
        }
        put(at * seconds, field, parse_number(value)?)
    };
    if job.fields == Fields::Whole {
        for pair in text.split(',').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').ok_or_else(|| bad(pair))?;
            let Some(field) = Field::parse(name).map_err(|_| bad(pair))? else {
                continue;
            };
            one(field, value).map_err(|_| bad(pair))?;
        }
        return Ok(());
    }
    let Fields::Named { first, last, parts } = job.fields else {
        return Ok(());
    };
    // The named fields in the order asked: each second's parts in turn.
    let mut values = Cut::new(text, b',');
    for second in first..=last {
        for part in parts {
            let Some(value) = values.next() else {
                return Ok(());
            };
            if !value.is_empty() {
                one(Field::new(second, *part), value).map_err(|_| bad(value))?;
            }
        }
    }
    Ok(())
}

/// A number as the read script writes it (Lua's `tostring` of what the
/// write script stored): a small integer, the usual case, is read
/// directly; anything else (fractions, exponents, `inf`) by the standard
/// parser. Both give the same `f64`.
fn parse_number(text: &str) -> Result<f64, BadField> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    // Up to 15 digits: exact in an f64, as the parser would give it.
    if !digits.is_empty() && digits.len() <= 15 && digits.bytes().all(|b| b.is_ascii_digit()) {
        let n = digits
            .bytes()
            .fold(0u64, |n, b| n * 10 + u64::from(b - b'0')) as f64;
        return Ok(if digits.len() < text.len() { -n } else { n });
    }
    text.parse().map_err(|_| BadField)
}

/// The pieces of `text` between separators, like `str::split` but cheaper
/// for the one- or two-character pieces a read answers most.
struct Cut<'a> {
    rest: Option<&'a str>,
    sep: u8,
}

impl<'a> Cut<'a> {
    fn new(text: &'a str, sep: u8) -> Cut<'a> {
        Cut {
            rest: Some(text),
            sep,
        }
    }
}

impl<'a> Iterator for Cut<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let rest = self.rest?;
        match rest.bytes().position(|b| b == self.sep) {
            // The separator is ASCII: both sides are whole UTF-8.
            Some(at) => {
                self.rest = Some(&rest[at + 1..]);
                Some(&rest[..at])
            }
            None => {
                self.rest = None;
                Some(rest)
            }
        }
    }
}

/// A day string's minutes inside the job's span (in minutes), merged into
/// one aggregate keyed by the last of them: a 30-day read of 1 000 series
/// would otherwise sort 43 million minutes. The order that matters (a
/// gauge's last value) is kept: a minute of an hour hash before that key
/// is merged before it, one after it (or at it: written later) after it.
fn decode_day(
    job: &ReadJob,
    bytes: &[u8],
    out: &mut BTreeMap<i64, Aggregate>,
) -> Result<(), StoreError> {
    let (first, _) = job.bucket.unit();
    let mut folded: Option<(i64, Aggregate)> = None;
    // Folded as decoded: no map of the day's minutes.
    rollup_codec::decode_each(bytes, |minute, agg| {
        let at = first * rollup_codec::MINUTES_PER_DAY + minute;
        if at < job.span.0 || at > job.span.1 {
            return;
        }
        match &mut folded {
            Some((last, acc)) => {
                acc.merge(&agg);
                *last = at;
            }
            None => folded = Some((at, agg)),
        }
    })
    .map_err(|e| StoreError::Protocol(e.to_string()))?;
    if let Some((last, agg)) = folded {
        match out.get_mut(&(last * 60)) {
            Some(existing) => existing.merge(&agg),
            None => {
                out.insert(last * 60, agg);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::window::SeriesWindow;

    fn job(fields: Fields, span: (i64, i64)) -> ReadJob {
        ReadJob {
            query: 0,
            series: 0,
            entry: 0,
            merge: false,
            in_order: false,
            bucket: Bucket::Minute(1),
            span,
            fields,
        }
    }

    #[test]
    fn numbers_and_pieces_read_as_the_standard_parsers_do() {
        for text in [
            "0",
            "1",
            "-3",
            "42",
            "123456789012345",
            "1234567890123456789",
            "1.5",
            "-0.25",
            "1e300",
            "inf",
            "-inf",
            "007",
            "-0",
        ] {
            let want: f64 = text.parse().unwrap();
            let got = parse_number(text).unwrap();
            assert_eq!(got.to_bits(), want.to_bits(), "{text}");
        }
        for bad in ["", "-", "x", "1x", "--1", " 1"] {
            assert!(parse_number(bad).is_err(), "{bad:?}");
        }
        for text in ["", "1", "1;;2", ";", "a;bc;"] {
            let want: Vec<&str> = text.split(';').collect();
            assert_eq!(Cut::new(text, b';').collect::<Vec<_>>(), want, "{text:?}");
        }
    }

    #[test]
    fn answers_decode_in_place() {
        let mut out = BTreeMap::new();
        let named = Fields::in_window(MetricKind::Counter, 1, 60, 62);
        decode_answer(
            MetricKind::Counter,
            &job(named, (60, 62)),
            Answer::Text("1.5,,2"),
            &mut out,
        )
        .unwrap();
        assert_eq!(
            out.into_iter().collect::<Vec<_>>(),
            [(60, Aggregate::Counter(1.5)), (62, Aggregate::Counter(2.0))]
        );
        let mut out = BTreeMap::new();
        let whole = job(Fields::Whole, (60, 100));
        decode_answer(
            MetricKind::Counter,
            &whole,
            Answer::Text("3=4,_f:9=1,59=5"),
            &mut out,
        )
        .unwrap();
        assert_eq!(
            out.into_iter().collect::<Vec<_>>(),
            [(63, Aggregate::Counter(4.0))]
        );
        let mut out = BTreeMap::new();
        assert!(decode_answer(MetricKind::Counter, &whole, Answer::Text("3=x"), &mut out).is_err());
        assert!(decode_answer(MetricKind::Counter, &whole, Answer::Text("q=1"), &mut out).is_err());
        assert!(decode_answer(MetricKind::Counter, &whole, Answer::Text(""), &mut out).is_ok());
        // A rollup hash: minutes of the hour, keyed by their first second.
        let mut out = BTreeMap::new();
        let hour = ReadJob {
            bucket: Bucket::Hour(2),
            span: (121, 122),
            ..job(Fields::Whole, (0, 0))
        };
        decode_answer(
            MetricKind::Counter,
            &hour,
            Answer::Text("0=1,1=2,2=3,3=4,_v=9"),
            &mut out,
        )
        .unwrap();
        assert_eq!(
            out.into_iter().collect::<Vec<_>>(),
            [
                (121 * 60, Aggregate::Counter(2.0)),
                (122 * 60, Aggregate::Counter(3.0))
            ]
        );
    }

    /// The fold gets what the map would have given, in the same order: a
    /// gauge's last value is its latest second's, whatever order a whole
    /// hash answers in.
    #[test]
    fn answers_in_order_fold_as_the_map_would() {
        let kind = MetricKind::Gauge;
        // Seconds 5, 3 and 4 of minute 1, out of order, and one outside the span.
        let text = "5:l=7,5:lo=7,5:hi=7,5:s=7,5:n=1,\
                    3:l=2,3:lo=1,3:hi=2,3:s=3,3:n=2,\
                    4:l=9,4:lo=9,4:hi=9,4:s=9,4:n=1,\
                    9:l=100,9:lo=100,9:hi=100,9:s=100,9:n=1";
        let whole = ReadJob {
            in_order: true,
            ..job(Fields::Whole, (63, 65))
        };
        let mut map = BTreeMap::new();
        decode_answer(kind, &whole, Answer::Text(text), &mut map).unwrap();
        let expected = SeriesWindow::from_seconds(map.values()).unwrap();
        let mut minute = vec![None; 60];
        let mut fold = SecondsFold::default();
        decode_in_order(kind, &whole, Answer::Text(text), &mut minute, &mut fold).unwrap();
        assert!(minute.iter().all(Option::is_none), "the slots are emptied");
        let got = fold.finish().unwrap();
        assert_eq!(got, expected);
        let SeriesWindow::Gauge(g) = got else {
            panic!("a gauge window");
        };
        assert_eq!((g.last, g.min, g.max, g.count), (7.0, 1.0, 9.0, 4.0));
        // Named fields of a counter: two minutes, in order.
        let named = |m: i64, span: (i64, i64)| ReadJob {
            in_order: true,
            bucket: Bucket::Minute(m),
            ..job(
                Fields::in_window(MetricKind::Counter, m, span.0, span.1),
                span,
            )
        };
        let mut fold = SecondsFold::default();
        let (a, b) = (named(1, (118, 121)), named(2, (118, 121)));
        decode_in_order(
            MetricKind::Counter,
            &a,
            Answer::Text("1,2"),
            &mut minute,
            &mut fold,
        )
        .unwrap();
        decode_in_order(
            MetricKind::Counter,
            &b,
            Answer::Text(",4"),
            &mut minute,
            &mut fold,
        )
        .unwrap();
        assert_eq!(fold.finish(), Some(SeriesWindow::Counter(7.0)));
        assert!(fold.finish().is_none(), "empty again");
        assert!(decode_in_order(
            MetricKind::Counter,
            &a,
            Answer::Text("x,1"),
            &mut minute,
            &mut fold
        )
        .is_err());
        let day = ReadJob {
            bucket: Bucket::Day(1),
            ..a
        };
        assert!(decode_in_order(
            MetricKind::Counter,
            &day,
            Answer::Bytes(None),
            &mut minute,
            &mut fold
        )
        .is_err());
    }
}

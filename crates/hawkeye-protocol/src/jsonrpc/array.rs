//! The items of a JSON array, one at a time, borrowed from the text and
//! without collecting them.
//!
//! A request line may be a megabyte of `[1,1,1,...]`: collecting its items
//! first (16 bytes each, 8 bytes of input each) would multiply the memory
//! one line costs. Walking the array instead costs nothing per item, lets a
//! caller count items and stop at a bound, and lets the server answer one
//! item at a time.

use std::borrow::Cow;

use serde::de::Error as _;
use serde_json::value::RawValue;

/// JSON's white space.
const WS: [char; 4] = [' ', '\t', '\n', '\r'];

/// Iterates the items of the JSON array `text`; an error (after which the
/// iteration ends) when `text` is not a well-formed array.
pub fn array_items(text: &str) -> ArrayItems<'_> {
    ArrayItems {
        rest: text,
        state: State::Start,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Start,
    Item,
    Done,
}

/// See [`array_items`].
#[derive(Clone)]
pub struct ArrayItems<'a> {
    rest: &'a str,
    state: State,
}

impl<'a> ArrayItems<'a> {
    fn fail(&mut self, message: &str) -> Option<Result<&'a RawValue, serde_json::Error>> {
        self.state = State::Done;
        Some(Err(serde_json::Error::custom(message)))
    }

    /// The array closed at `after` (what follows its `]`): only white space may follow.
    fn close(&mut self, after: &str) -> Option<Result<&'a RawValue, serde_json::Error>> {
        self.state = State::Done;
        if after.trim_start_matches(WS).is_empty() {
            None
        } else {
            self.fail("trailing characters after the array")
        }
    }
}

impl<'a> Iterator for ArrayItems<'a> {
    type Item = Result<&'a RawValue, serde_json::Error>;

    fn next(&mut self) -> Option<Self::Item> {
        let s = self.rest.trim_start_matches(WS);
        let s = match self.state {
            State::Done => return None,
            State::Start => {
                let Some(inner) = s.strip_prefix('[') else {
                    return self.fail("expected a JSON array");
                };
                self.state = State::Item;
                let inner = inner.trim_start_matches(WS);
                if let Some(after) = inner.strip_prefix(']') {
                    return self.close(after);
                }
                inner
            }
            State::Item => {
                if let Some(after) = s.strip_prefix(']') {
                    return self.close(after);
                }
                match s.strip_prefix(',') {
                    Some(next) => next.trim_start_matches(WS),
                    None => return self.fail("expected ',' or ']' after an array item"),
                }
            }
        };
        let mut stream = serde_json::Deserializer::from_str(s).into_iter::<&RawValue>();
        match stream.next() {
            Some(Ok(item)) => {
                self.rest = &s[stream.byte_offset()..];
                Some(Ok(item))
            }
            Some(Err(e)) => {
                self.state = State::Done;
                Some(Err(e))
            }
            None => self.fail("unexpected end of the array"),
        }
    }
}

/// The items of a JSON array of strings, decoded: borrowed from `text` when
/// they hold no escape. `text` must already be valid JSON (a [`RawValue`]
/// is): then finding where each string ends is a scan for its closing quote,
/// with no second validation. The first item that is not a string is an
/// error, after which the iteration ends.
///
/// This is the hot path of batched `metric.send`: a thousand lines per
/// request cost one scan for quotes.
pub fn string_items(text: &str) -> StringItems<'_> {
    StringItems {
        rest: text,
        state: State::Start,
    }
}

/// See [`string_items`].
#[derive(Clone)]
pub struct StringItems<'a> {
    rest: &'a str,
    state: State,
}

/// An item of the array is not a string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotAString;

impl<'a> StringItems<'a> {
    fn not_a_string(&mut self) -> Option<Result<Cow<'a, str>, NotAString>> {
        self.state = State::Done;
        Some(Err(NotAString))
    }
}

impl<'a> Iterator for StringItems<'a> {
    type Item = Result<Cow<'a, str>, NotAString>;

    fn next(&mut self) -> Option<Self::Item> {
        let s = self.rest.trim_start_matches(WS);
        let item = match self.state {
            State::Done => return None,
            State::Start => match s.strip_prefix('[') {
                Some(inner) => inner.trim_start_matches(WS),
                None => return self.not_a_string(),
            },
            State::Item => match s.strip_prefix(',') {
                Some(next) => next.trim_start_matches(WS),
                None if s.starts_with(']') => {
                    self.state = State::Done;
                    return None;
                }
                None => return self.not_a_string(),
            },
        };
        if self.state == State::Start && item.starts_with(']') {
            self.state = State::Done;
            return None;
        }
        self.state = State::Item;
        if !item.starts_with('"') {
            return self.not_a_string();
        }
        // The closing quote is the first one not escaped by a backslash.
        let bytes = item.as_bytes();
        let (mut end, mut escaped) = (1, false);
        loop {
            match memchr::memchr2(b'"', b'\\', &bytes[end..]) {
                Some(p) if bytes[end + p] == b'\\' => {
                    escaped = true;
                    end += p + 2;
                }
                Some(p) => {
                    end += p;
                    break;
                }
                None => return self.not_a_string(),
            }
        }
        self.rest = &item[end + 1..];
        if !escaped {
            return Some(Ok(Cow::Borrowed(&item[1..end])));
        }
        match serde_json::from_str::<String>(&item[..=end]) {
            Ok(decoded) => Some(Ok(Cow::Owned(decoded))),
            Err(_) => self.not_a_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(text: &str) -> Result<Vec<&str>, String> {
        array_items(text)
            .map(|r| r.map(RawValue::get).map_err(|e| e.to_string()))
            .collect()
    }

    #[test]
    fn items_are_borrowed_as_written() {
        assert_eq!(items("[]").unwrap(), Vec::<&str>::new());
        assert_eq!(items(" [ ] \n").unwrap(), Vec::<&str>::new());
        assert_eq!(
            items(r#"[1, "a,]", {"x": [1,2]} ,null,[]]"#).unwrap(),
            vec!["1", r#""a,]""#, r#"{"x": [1,2]}"#, "null", "[]"]
        );
    }

    #[test]
    fn malformed_arrays_are_errors() {
        for bad in [
            "", "{}", "[", "[1", "[1,", "[1,]", "[,1]", "[1 2]", "[1]x", "[1]]", "[tru]", "[\"a]",
            "[1}",
        ] {
            assert!(items(bad).is_err(), "{bad:?} should be an error");
        }
    }

    #[test]
    fn the_same_items_as_serde() {
        let text = r#"[{"jsonrpc":"2.0","method":"a","id":1}, 5, "x\"y", -1.5e3, [true]]"#;
        let ours = items(text).unwrap();
        let theirs: Vec<&RawValue> = serde_json::from_str(text).unwrap();
        let theirs: Vec<&str> = theirs.iter().map(|r| r.get()).collect();
        assert_eq!(ours, theirs);
    }

    fn strings(text: &str) -> Result<Vec<String>, NotAString> {
        string_items(text).map(|r| r.map(Cow::into_owned)).collect()
    }

    #[test]
    fn string_items_decode_as_serde_does() {
        for text in [
            r#"[]"#,
            r#" [ "a:1|c" , "b" ] "#,
            r#"["", "\"", "\\", "a\\\"b", "\u00e9\n", "é|#,:"]"#,
        ] {
            let theirs: Vec<String> = serde_json::from_str(text).unwrap();
            assert_eq!(strings(text).unwrap(), theirs, "{text}");
        }
        let borrowed: Vec<_> = string_items(r#"["a", "b\n"]"#).collect();
        assert!(matches!(borrowed[0], Ok(Cow::Borrowed("a"))));
        assert!(matches!(borrowed[1], Ok(Cow::Owned(_))));
    }

    #[test]
    fn an_item_that_is_not_a_string_ends_the_walk() {
        for text in [
            r#"[1]"#,
            r#"["a", 2, "c"]"#,
            r#"["a", {"b": 1}]"#,
            r#"{"a": 1}"#,
            r#"["a", null]"#,
        ] {
            assert_eq!(strings(text), Err(NotAString), "{text}");
        }
        let mut it = string_items(r#"["a", 2, "c"]"#);
        assert!(it.next().unwrap().is_ok());
        assert!(it.next().unwrap().is_err());
        assert!(it.next().is_none());
    }

    proptest::proptest! {
        /// Any strings, written by serde (escapes, quotes, backslashes,
        /// any Unicode), read back by the scanner as serde reads them.
        #[test]
        fn string_items_read_what_serde_wrote(items in proptest::collection::vec(proptest::prelude::any::<String>(), 0..8), spaced in proptest::bool::ANY) {
            let mut text = serde_json::to_string(&items).unwrap();
            if spaced {
                text = serde_json::to_string_pretty(&items).unwrap();
            }
            proptest::prop_assert_eq!(strings(&text).unwrap(), items);
        }
    }

    #[test]
    fn counting_stops_where_the_caller_stops() {
        // Only the first items are looked at: the malformed tail is never reached.
        let mut it = array_items("[1,2,3,oops");
        assert_eq!(it.by_ref().take(3).filter(Result::is_ok).count(), 3);
        assert!(it.next().unwrap().is_err());
    }
}

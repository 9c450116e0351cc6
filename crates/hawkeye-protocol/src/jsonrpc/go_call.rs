//! The one request shape Go's `net/rpc/jsonrpc` client writes for
//! `Metric.Handle`, read with a few comparisons instead of a JSON parser.
//!
//! Go encodes its request struct with its members always in the same order
//! and no spaces: `{"method":"Metric.Handle","params":[{"Text":"…"}],"id":7}`.
//! That is most of the traffic of a Go application that sends one event per
//! call, so it is worth recognising before anything is parsed. Anything
//! else, including a text with an escape in it, is left to the general
//! parser ([`super::parse_incoming`]), which reads this shape the same way
//! (a property test holds the two to it).

/// A `Metric.Handle` call as Go writes it, borrowing from the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GoHandleCall<'a> {
    /// The `Text` argument: metric lines, as written (it held no escape).
    pub text: &'a str,
    /// The id as written: an unsigned integer.
    pub id: &'a str,
}

const HEAD: &str = r#"{"method":"Metric.Handle","params":[{"Text":""#;
const MIDDLE: &str = r#""}],"id":"#;
/// Digits of the largest `uint64`, the type of Go's request ids.
const MAX_ID_DIGITS: usize = 20;

/// Reads `line` (without its newline) if it is a `Metric.Handle` call in
/// exactly Go's shape; `None` for anything else. It takes bytes, so that
/// only the text is checked to be UTF-8: the rest is compared with ASCII.
pub fn go_handle_call(line: &[u8]) -> Option<GoHandleCall<'_>> {
    let rest = line.strip_prefix(HEAD.as_bytes())?;
    let (close, ascii) = text_end(rest)?;
    let after = rest[close..].strip_prefix(MIDDLE.as_bytes())?;
    let end = after
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t' | b'\r'))
        .map_or(0, |i| i + 1);
    let id = after[..end].strip_suffix(b"}")?;
    let well_formed = !id.is_empty()
        && id.len() <= MAX_ID_DIGITS
        && id.iter().all(u8::is_ascii_digit)
        && (id.len() == 1 || id[0] != b'0');
    if !well_formed {
        return None;
    }
    // The id is digits and the middle ASCII: only a text with a byte past
    // ASCII needs the UTF-8 check.
    let id_end = close + MIDDLE.len() + id.len();
    let checked = if ascii {
        // SAFETY: every byte of `rest[..id_end]` is ASCII: the text's were
        // looked at by `text_end`, the middle is the ASCII `MIDDLE`, the
        // id was checked to be digits.
        unsafe { std::str::from_utf8_unchecked(&rest[..id_end]) }
    } else {
        std::str::from_utf8(&rest[..id_end]).ok()?
    };
    let (text, id) = (&checked[..close], &checked[id_end - id.len()..]);
    Some(GoHandleCall { text, id })
}

/// Where the text ends (its closing quote) and whether it is all ASCII, in
/// one pass over it; `None` if it has no closing quote, or holds an escape
/// (which needs decoding) or a raw control character (invalid JSON): both
/// are the general parser's to answer.
fn text_end(rest: &[u8]) -> Option<(usize, bool)> {
    // A table lookup per byte, then one word-at-a-time ASCII check of the
    // text: fewer instructions than matching each byte three ways.
    let at = rest.iter().position(|&b| STOPS[usize::from(b)])?;
    if rest[at] != b'"' {
        return None;
    }
    Some((at, rest[..at].is_ascii()))
}

/// The bytes that end a text's scan: its closing quote, an escape, or a
/// control character.
const STOPS: [bool; 256] = {
    let mut stops = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        stops[b] = true;
        b += 1;
    }
    stops[b'"' as usize] = true;
    stops[b'\\' as usize] = true;
    stops
};

#[cfg(test)]
mod tests {
    use super::*;

    fn go_handle(line: &str) -> Option<GoHandleCall<'_>> {
        go_handle_call(line.as_bytes())
    }

    #[test]
    fn a_text_that_is_not_utf8_is_left_to_the_general_parser() {
        let mut line = br#"{"method":"Metric.Handle","params":[{"Text":"a:1|c"}],"id":1}"#.to_vec();
        line[46] = 0xff;
        assert_eq!(go_handle_call(&line), None);
    }

    #[test]
    fn a_text_past_ascii_is_read_when_it_is_utf8() {
        let call =
            go_handle(r#"{"method":"Metric.Handle","params":[{"Text":"a:1|c|#é:ü"}],"id":7}"#);
        assert_eq!(
            call,
            Some(GoHandleCall {
                text: "a:1|c|#é:ü",
                id: "7"
            })
        );
        // A byte past ASCII that is not UTF-8, however the rest looks.
        let mut line = br#"{"method":"Metric.Handle","params":[{"Text":"a:1|c"}],"id":1}"#.to_vec();
        line[47] = 0xc3;
        assert_eq!(go_handle_call(&line), None);
    }

    #[test]
    fn go_shape_is_read_and_anything_else_is_left_alone() {
        let call = go_handle(r#"{"method":"Metric.Handle","params":[{"Text":"a:1|c"}],"id":42}"#);
        assert_eq!(
            call,
            Some(GoHandleCall {
                text: "a:1|c",
                id: "42"
            })
        );
        for other in [
            r#"{"method":"Metric.Handle","params":[{"Text":"a:1|c\n"}],"id":42}"#,
            r#"{"method":"Metric.Handle","params":[{"Text":"a:1|c"}],"id":042}"#,
            r#"{"method":"Metric.Handle","params":[{"Text":"a:1|c"}],"id":-1}"#,
            r#"{"method":"Metric.Handle","params":[{"Text":"a:1|c"}],"id":null}"#,
            r#"{"method":"Metric.Handle","params":[{"Text":"a:1|c"}],"id":}"#,
            r#"{"method":"Metric.Handle","params":[{"Text":"a:1|c"}],"id":1}}"#,
            r#"{"method":"Metric.Handle","params":[{"Text":"a:1|c"}],"id":1,"x":2}"#,
            r#"{"method":"Metric.Handle","params":[{"Text":"a:1|c"}],"id":123456789012345678901}"#,
            r#"{"method":"Metric.Handle","params":[{"Text":"a:1|c","X":1}],"id":1}"#,
            r#"{"method":"Metric.Handle","params":[{"Text":"a"b"}],"id":1}"#,
            r#"{"method":"Metric.Handle","params":[{"Text":"#,
            r#"{"method": "Metric.Handle","params":[{"Text":"a:1|c"}],"id":1}"#,
        ] {
            assert_eq!(go_handle(other), None, "{other}");
        }
        assert!(go_handle(
            "{\"method\":\"Metric.Handle\",\"params\":[{\"Text\":\"a\u{1}\"}],\"id\":1}"
        )
        .is_none());
        assert!(
            go_handle(r#"{"method":"Metric.Handle","params":[{"Text":""}],"id":0} "#).is_some()
        );
    }
}

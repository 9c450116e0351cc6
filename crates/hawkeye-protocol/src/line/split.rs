//! Splitting and trimming a line at ASCII bytes, without decoding
//! characters. `str::split(char)` and `trim_matches` with a closure decode
//! UTF-8 and set up a searcher per call, which on a line of twenty bytes
//! costs more than the search; a line is cut only at ASCII separators, so
//! byte positions are always character boundaries.

/// `text` cut at the first `sep`: before it, and after it.
pub(super) fn split_once(text: &str, sep: u8) -> Option<(&str, &str)> {
    let at = text.bytes().position(|b| b == sep)?;
    Some((&text[..at], &text[at + 1..]))
}

/// The pieces of `text` between the `sep` bytes (one, the whole text, when
/// there is none), as `str::split` gives them.
pub(super) fn split(text: &str, sep: u8) -> Split<'_> {
    Split {
        rest: Some(text),
        sep,
    }
}

pub(super) struct Split<'a> {
    rest: Option<&'a str>,
    sep: u8,
}

impl<'a> Iterator for Split<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let rest = self.rest?;
        match split_once(rest, self.sep) {
            Some((piece, after)) => {
                self.rest = Some(after);
                Some(piece)
            }
            None => {
                self.rest = None;
                Some(rest)
            }
        }
    }
}

/// `text` without spaces, tabs and carriage returns at either end.
pub(super) fn trim_blanks(text: &str) -> &str {
    let blank = |b: &u8| matches!(b, b' ' | b'\t' | b'\r');
    let bytes = text.as_bytes();
    let start = bytes.iter().position(|b| !blank(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !blank(b))
        .map_or(start, |i| i + 1);
    &text[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_gives_what_str_split_gives() {
        for text in ["", "a", "|", "a|b", "|a||b|", "é|ü|", "a:b|c|#t:v"] {
            assert_eq!(
                split(text, b'|').collect::<Vec<_>>(),
                text.split('|').collect::<Vec<_>>(),
                "{text:?}"
            );
            assert_eq!(split_once(text, b'|'), text.split_once('|'), "{text:?}");
        }
    }

    #[test]
    fn trim_gives_what_trim_matches_gives() {
        let set = |c: char| c == '\r' || c == ' ' || c == '\t';
        for text in ["", " ", " \r\t", "a", " a ", "\ta b\r", "é \r", " ü"] {
            assert_eq!(trim_blanks(text), text.trim_matches(set), "{text:?}");
        }
    }
}

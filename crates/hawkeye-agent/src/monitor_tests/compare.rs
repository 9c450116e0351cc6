//! Expected against got, and the diff printed when they differ.

use std::fmt::Write;

/// One part of one expectation that did not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// The expectation's time, as written.
    pub at: String,
    /// `alerts` or `mails`.
    pub what: &'static str,
    pub expected: Vec<String>,
    pub got: Vec<String>,
}

/// Compares two lists as multisets (order does not matter, repeats do).
pub fn compare(
    at: &str,
    what: &'static str,
    mut expected: Vec<String>,
    mut got: Vec<String>,
) -> Option<Mismatch> {
    expected.sort();
    got.sort();
    (expected != got).then(|| Mismatch {
        at: at.to_string(),
        what,
        expected,
        got,
    })
}

impl Mismatch {
    /// The two lists merged: lines in both unmarked, `-` expected but not
    /// got, `+` got but not expected.
    pub fn render(&self, out: &mut String) {
        let _ = writeln!(out, "    at {}, {}:", self.at, self.what);
        let (mut e, mut g) = (self.expected.iter().peekable(), self.got.iter().peekable());
        loop {
            let line = match (e.peek(), g.peek()) {
                (None, None) => break,
                (Some(x), Some(y)) if x == y => {
                    let line = format!("        {x}");
                    e.next();
                    g.next();
                    line
                }
                (Some(x), y) if y.is_none_or(|y| x < y) => {
                    let line = format!("      - {x}");
                    e.next();
                    line
                }
                (_, y) => {
                    let line = format!("      + {}", y.map_or("", |y| y.as_str()));
                    g.next();
                    line
                }
            };
            let _ = writeln!(out, "{line}");
        }
        if self.expected.is_empty() && self.got.is_empty() {
            let _ = writeln!(out, "        (none)");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn equal_multisets_match_in_any_order() {
        assert_eq!(
            compare("1m", "mails", strings(&["b", "a"]), strings(&["a", "b"])),
            None
        );
        assert!(compare("1m", "mails", strings(&["a", "a"]), strings(&["a"])).is_some());
    }

    #[test]
    fn the_diff_marks_what_is_missing_and_what_is_extra() {
        let m = compare("1m", "mails", strings(&["a", "c"]), strings(&["b", "c"])).unwrap();
        let mut out = String::new();
        m.render(&mut out);
        assert_eq!(out, "    at 1m, mails:\n      - a\n      + b\n        c\n");
    }
}

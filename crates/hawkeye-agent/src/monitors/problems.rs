//! Problems found in a monitors file, located as `file:line:col: message`.
//!
//! Problems are gathered with their YAML path while the file is read; the
//! path becomes a line and column through [`crate::yaml_location`] once, at
//! the end. YAML syntax errors come from the parser with their own
//! position; the ones people make most (an unclosed quote, a tab in the
//! indentation) are reworded to say what to do.

use std::fmt;

use crate::yaml_location::{locate_nearest, Location, Part, YamlPath};

/// One problem found in a monitors file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// Where it is written; `None` for a file built in code.
    pub location: Option<Location>,
    /// The node, as `monitors[0].triggers[1].op`.
    pub path: String,
    pub message: String,
}

/// Every problem of a monitors file, one per line as `file:line:col: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors {
    pub origin: String,
    pub problems: Vec<ConfigProblem>,
}

impl ConfigErrors {
    /// One problem about the file as a whole (it cannot be read).
    pub fn whole_file(origin: &str, message: String) -> ConfigErrors {
        ConfigErrors {
            origin: origin.to_string(),
            problems: vec![ConfigProblem {
                location: None,
                path: String::new(),
                message,
            }],
        }
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            match p.location {
                Some(l) => write!(f, "{}:{}:{}: {}", self.origin, l.line, l.column, p.message)?,
                None if p.path.is_empty() => write!(f, "{}: {}", self.origin, p.message)?,
                None => write!(f, "{}: {}: {}", self.origin, p.path, p.message)?,
            }
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// A problem before it is located.
#[derive(Debug, Clone)]
struct Problem {
    path: YamlPath,
    part: Part,
    message: String,
}

/// Problems, which refuse the file, and warnings, which load it as the
/// message says (a setting of the Go original read its old way, say).
#[derive(Default)]
pub(crate) struct Problems {
    errors: Vec<Problem>,
    warnings: Vec<Problem>,
}

impl Problems {
    /// A problem with the value at `path`.
    pub(crate) fn at(&mut self, path: YamlPath, message: impl Into<String>) {
        self.errors.push(Problem {
            path,
            part: Part::Value,
            message: message.into(),
        });
    }

    /// A problem with the key of `path` (an unknown key, say).
    pub(crate) fn at_key(&mut self, path: YamlPath, message: impl Into<String>) {
        self.errors.push(Problem {
            path,
            part: Part::Key,
            message: message.into(),
        });
    }

    pub(crate) fn len(&self) -> usize {
        self.errors.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// A value that loads, but not as written: said at every load.
    pub(crate) fn warn(&mut self, path: YamlPath, message: impl Into<String>) {
        self.warnings.push(Problem {
            path,
            part: Part::Value,
            message: message.into(),
        });
    }

    pub(crate) fn into_errors(self, origin: &str, text: Option<&str>) -> ConfigErrors {
        located(self.errors, origin, text)
    }

    /// The warnings, located (the errors are dropped: call this only for a
    /// file without errors).
    pub(crate) fn into_warnings(self, origin: &str, text: Option<&str>) -> ConfigErrors {
        located(self.warnings, origin, text)
    }
}

fn located(found: Vec<Problem>, origin: &str, text: Option<&str>) -> ConfigErrors {
    let mut problems: Vec<ConfigProblem> = found
        .into_iter()
        .map(|p| ConfigProblem {
            location: text.map(|t| locate_nearest(t, &p.path, p.part)),
            path: p.path.to_string(),
            message: p.message,
        })
        .collect();
    problems.sort_by_key(|p| p.location);
    problems.dedup();
    ConfigErrors {
        origin: origin.to_string(),
        problems,
    }
}

/// A file the YAML parser refused.
pub(crate) fn syntax_error(e: &serde_yaml::Error, text: &str, origin: &str) -> ConfigErrors {
    let raw = e.to_string();
    let at = e
        .location()
        .map(|l| Location {
            line: l.line(),
            column: l.column(),
        })
        .unwrap_or(Location { line: 1, column: 1 });
    let (location, message) = explain(&raw, text, at);
    ConfigErrors {
        origin: origin.to_string(),
        problems: vec![ConfigProblem {
            location: Some(location),
            path: String::new(),
            message,
        }],
    }
}

/// Rewords the parser's message for the common mistakes; otherwise keeps it.
fn explain(raw: &str, text: &str, at: Location) -> (Location, String) {
    if raw.contains("while scanning a quoted scalar") {
        // The parser reports where the file ended; the mistake is where the
        // string began, which its message names.
        let start = mark_after(raw, "while scanning a quoted scalar at").unwrap_or(at);
        return (
            start,
            "unclosed quote: the string that starts here has no closing quote".to_string(),
        );
    }
    let line = text.lines().nth(at.line.saturating_sub(1)).unwrap_or("");
    let indent: &str = &line[..line.len() - line.trim_start().len()];
    if indent.contains('\t') || raw.contains("tab") {
        let column = line.find('\t').map_or(at.column, |i| i + 1);
        return (
            Location {
                line: at.line,
                column,
            },
            "tabs are not allowed in YAML indentation; indent with spaces".to_string(),
        );
    }
    (at, strip_position(raw))
}

/// The `line L column C` that follows `prefix` in a parser message.
fn mark_after(raw: &str, prefix: &str) -> Option<Location> {
    let rest = raw.split(prefix).nth(1)?;
    let mut numbers = rest
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>().ok());
    Some(Location {
        line: numbers.next()??,
        column: numbers.next()??,
    })
}

/// The parser's message without its own `at line L column C` (the
/// location is printed in front already).
fn strip_position(raw: &str) -> String {
    match raw.find(" at line ") {
        Some(i) => raw[..i].to_string(),
        None => raw.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first(text: &str) -> (usize, usize, String) {
        let e = serde_yaml::from_str::<serde_yaml::Value>(text).unwrap_err();
        let errors = syntax_error(&e, text, "m.yaml");
        let p = &errors.problems[0];
        let l = p.location.unwrap();
        (l.line, l.column, p.message.clone())
    }

    #[test]
    fn an_unclosed_quote_points_at_its_start() {
        let (line, column, message) =
            first("version: 1\nmonitors:\n  - metric: \"http.requests\n    type: c\n");
        assert_eq!((line, column), (3, 13), "{message}");
        assert!(message.starts_with("unclosed quote"), "{message}");
        let (line, column, _) = first("a: 1\nb: 'x\n");
        assert_eq!((line, column), (2, 4));
    }

    #[test]
    fn a_tab_says_tabs_are_not_allowed() {
        let (line, column, message) = first("version: 1\nmonitors:\n\t- metric: a\n");
        assert_eq!(line, 3, "{message}");
        assert_eq!(column, 1);
        assert!(message.contains("tabs are not allowed"), "{message}");
    }
}

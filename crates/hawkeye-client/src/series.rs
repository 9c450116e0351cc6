//! A series as the client writes it: the metric name followed by its tags in
//! canonical order, ready to be put into a line. Building one sanitizes what
//! the server would reject, so recording never fails on a bad name.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use hawkeye_protocol::line::MAX_NAME_LEN;

/// Tag keys, tag values and set members longer than this many bytes are
/// cut (at a character boundary) and counted in
/// [`ClientStats::truncated`](crate::ClientStats::truncated), so that no
/// single line can grow past what the server accepts.
pub const MAX_TAG_BYTES: usize = 1000;

/// `name` or `name|#k:v,k2:v2` (tags sorted by key). A name cannot hold `|`,
/// so the first `|` separates the two.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct SeriesText(Arc<str>);

impl SeriesText {
    /// The name part.
    pub(crate) fn name(&self) -> &str {
        self.0.split_once('|').map_or(&self.0, |(n, _)| n)
    }

    /// The `|#...` part, or "".
    pub(crate) fn tag_suffix(&self) -> &str {
        self.0.find('|').map_or("", |i| &self.0[i..])
    }
}

/// What every series of one client shares: a name prefix and default tags.
#[derive(Debug, Clone, Default)]
pub(crate) struct SeriesBuilder {
    prefix: String,
    default_tags: Vec<(String, String)>,
    /// Tag keys and values cut to [`MAX_TAG_BYTES`].
    truncated: Arc<AtomicU64>,
}

impl SeriesBuilder {
    pub(crate) fn new(
        prefix: &str,
        default_tags: &[(String, String)],
        truncated: Arc<AtomicU64>,
    ) -> SeriesBuilder {
        let mut builder = SeriesBuilder {
            prefix: prefix.trim_end_matches('.').to_string(),
            default_tags: Vec::new(),
            truncated,
        };
        for (k, v) in default_tags {
            let k = builder.bounded(clean_tag_key(k));
            if !k.is_empty() && !builder.default_tags.iter().any(|(d, _)| *d == k) {
                let v = builder.bounded(clean_tag_value(v));
                builder.default_tags.push((k, v));
            }
        }
        builder
    }

    /// `s` cut to [`MAX_TAG_BYTES`], counted when it was longer.
    fn bounded(&self, mut s: String) -> String {
        if s.len() > MAX_TAG_BYTES {
            truncate_at_char(&mut s, MAX_TAG_BYTES);
            self.truncated.fetch_add(1, Ordering::Relaxed);
        }
        s
    }

    /// A set member as the server accepts it (see [`clean_set_member`]), cut
    /// to [`MAX_TAG_BYTES`] (counted); `None` when empty.
    pub(crate) fn set_member(&self, m: &str) -> Option<Box<str>> {
        let mut m = clean_set_member(m)?.into_string();
        if m.len() > MAX_TAG_BYTES {
            truncate_at_char(&mut m, MAX_TAG_BYTES);
            self.truncated.fetch_add(1, Ordering::Relaxed);
        }
        Some(m.into_boxed_str())
    }

    /// The series of `name` with `tags`; `None` when nothing usable is left
    /// of the name.
    pub(crate) fn build(&self, name: &str, tags: &[(&str, &str)]) -> Option<SeriesText> {
        if name.is_empty() {
            return None;
        }
        if self.prefix.is_empty()
            && self.default_tags.is_empty()
            && tags.is_empty()
            && is_clean_name(name)
        {
            return Some(SeriesText(Arc::from(name)));
        }
        let mut text = String::with_capacity(name.len() + self.prefix.len() + 32);
        if !self.prefix.is_empty() {
            text.push_str(&self.prefix);
            text.push('.');
        }
        push_clean_name(name, &mut text);
        truncate_at_char(&mut text, MAX_NAME_LEN);

        let mut all: Vec<(String, String)> =
            Vec::with_capacity(tags.len() + self.default_tags.len());
        for (k, v) in tags {
            let k = self.bounded(clean_tag_key(k));
            if !k.is_empty() && !all.iter().any(|(d, _)| *d == k) {
                all.push((k, self.bounded(clean_tag_value(v))));
            }
        }
        for (k, v) in &self.default_tags {
            if !all.iter().any(|(d, _)| d == k) {
                all.push((k.clone(), v.clone()));
            }
        }
        all.sort();
        for (i, (k, v)) in all.iter().enumerate() {
            text.push_str(if i == 0 { "|#" } else { "," });
            text.push_str(k);
            if !v.is_empty() {
                text.push(':');
                text.push_str(v);
            }
        }
        Some(SeriesText(Arc::from(text)))
    }
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

fn is_clean_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_NAME_LEN && name.chars().all(is_name_char)
}

/// Characters outside `[A-Za-z0-9_.-]` become `_`.
fn push_clean_name(name: &str, out: &mut String) {
    out.extend(name.chars().map(|c| if is_name_char(c) { c } else { '_' }));
}

fn truncate_at_char(s: &mut String, max: usize) {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
}

/// Tag keys may not hold whitespace, control characters, `#`, or the
/// separators `,` `:` `|`.
fn clean_tag_key(k: &str) -> String {
    k.chars()
        .map(|c| {
            if c.is_control() || c.is_whitespace() || matches!(c, '#' | ',' | ':' | '|') {
                '_'
            } else {
                c
            }
        })
        .collect()
}

/// Tag values may not hold control characters or the separators `,` `|`.
fn clean_tag_value(v: &str) -> String {
    v.chars()
        .map(|c| {
            if c.is_control() || matches!(c, ',' | '|') {
                '_'
            } else {
                c
            }
        })
        .collect()
}

/// A set member may not hold `:`, `|` or control characters.
pub(crate) fn clean_set_member(m: &str) -> Option<Box<str>> {
    if m.is_empty() {
        return None;
    }
    Some(
        m.chars()
            .map(|c| {
                if c.is_control() || matches!(c, ':' | '|') {
                    '_'
                } else {
                    c
                }
            })
            .collect::<String>()
            .into_boxed_str(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use hawkeye_protocol::parse_line;

    #[test]
    fn plain_names_are_kept() {
        let b = SeriesBuilder::default();
        let s = b.build("http.response.400", &[]).unwrap();
        assert_eq!(s.name(), "http.response.400");
        assert_eq!(s.tag_suffix(), "");
    }

    #[test]
    fn tags_are_sorted_and_defaults_added() {
        let b = SeriesBuilder::new(
            "app.",
            &[("env".into(), "prod".into()), ("route".into(), "x".into())],
            Arc::default(),
        );
        let s = b
            .build("hits", &[("route", "/a"), ("code", "200")])
            .unwrap();
        assert_eq!(s.name(), "app.hits");
        assert_eq!(s.tag_suffix(), "|#code:200,env:prod,route:/a");
    }

    #[test]
    fn bad_characters_are_replaced_and_lines_parse() {
        let b = SeriesBuilder::default();
        let s = b
            .build(
                "my metric:π|x",
                &[("bad key,#", "v|a,l\n"), ("", "dropped"), ("flag", "")],
            )
            .unwrap();
        let line = format!("{}:1|c{}", s.name(), s.tag_suffix());
        let parsed = parse_line(&line).unwrap();
        assert_eq!(parsed.name, "my_metric___x");
        assert_eq!(parsed.tags, vec![("bad_key__", "v_a_l_"), ("flag", "")]);
        assert!(b.build("", &[]).is_none());
        let long = "a".repeat(300);
        assert_eq!(
            b.build(&long, &[("k", "v")]).unwrap().name().len(),
            MAX_NAME_LEN
        );
    }

    #[test]
    fn long_tags_and_set_members_are_cut_and_counted() {
        let counter = Arc::new(AtomicU64::new(0));
        let b = SeriesBuilder::new("", &[], Arc::clone(&counter));
        let huge = "é".repeat(1 << 20);
        let s = b.build("n", &[("k", &huge), (&huge, "v")]).unwrap();
        let line = format!("{}:1|c{}", s.name(), s.tag_suffix());
        let parsed = parse_line(&line).unwrap();
        assert!(parsed
            .tags
            .iter()
            .all(|(k, v)| k.len() <= MAX_TAG_BYTES && v.len() <= MAX_TAG_BYTES));
        assert!(line.len() < 3 * MAX_TAG_BYTES, "{}", line.len());
        assert_eq!(counter.load(Ordering::Relaxed), 2);
        let m = b.set_member(&huge).unwrap();
        assert_eq!(m.len(), MAX_TAG_BYTES);
        assert_eq!(counter.load(Ordering::Relaxed), 3);
        assert_eq!(b.set_member("short").as_deref(), Some("short"));
        assert_eq!(counter.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn set_members_are_cleaned() {
        assert_eq!(clean_set_member("a:b|c").as_deref(), Some("a_b_c"));
        assert_eq!(clean_set_member(""), None);
    }
}

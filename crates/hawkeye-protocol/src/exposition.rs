//! The Prometheus text exposition format (version 0.0.4), written without
//! I/O: metric and label names made valid, label values and help texts
//! escaped, numbers written as Prometheus reads them. What the server's
//! `/metrics` makes of hawkeye's series (names, tags, kinds) is in
//! docs/protocol.md, "Prometheus"; this module only writes the format.
//!
//! The caller groups the samples of one family after its header, as the
//! format requires, and names each family once; [`Exposition`] checks
//! neither (it would need to hold every name written).

use std::borrow::Cow;
use std::fmt::Write as _;

/// The `Content-Type` of the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A metric family's type, as written on its `# TYPE` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FamilyType {
    Counter,
    Gauge,
    Summary,
    Untyped,
}

impl FamilyType {
    pub fn as_str(self) -> &'static str {
        match self {
            FamilyType::Counter => "counter",
            FamilyType::Gauge => "gauge",
            FamilyType::Summary => "summary",
            FamilyType::Untyped => "untyped",
        }
    }
}

/// `name` as a valid metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`): every other
/// character becomes `_` (so `http.response.400` is
/// `http_response_400`), and a leading digit gets a `_` before it. Colons
/// are left to recording rules: they become `_` too.
pub fn metric_name(name: &str) -> Cow<'_, str> {
    sanitize(name)
}

/// `name` as a valid label name (`[a-zA-Z_][a-zA-Z0-9_]*`), likewise. Names
/// starting with `__` are Prometheus's own: they get `tag` before them.
pub fn label_name(name: &str) -> Cow<'_, str> {
    let clean = sanitize(name);
    if clean.starts_with("__") {
        return Cow::Owned(format!("tag{clean}"));
    }
    clean
}

fn sanitize(name: &str) -> Cow<'_, str> {
    let valid =
        |i: usize, c: char| c.is_ascii_alphabetic() || c == '_' || (i > 0 && c.is_ascii_digit());
    if !name.is_empty() && name.chars().enumerate().all(|(i, c)| valid(i, c)) {
        return Cow::Borrowed(name);
    }
    let mut out = String::with_capacity(name.len() + 1);
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        out.push('_');
    }
    out.extend(name.chars().map(|c| {
        if c.is_ascii_alphanumeric() || c == '_' {
            c
        } else {
            '_'
        }
    }));
    Cow::Owned(out)
}

/// Writes a number as Prometheus reads it: `+Inf`, `-Inf`, `NaN`, else the
/// shortest text that reads back as the same double (`1e200`, not 201
/// digits).
pub fn write_value(out: &mut String, value: f64) {
    if value.is_nan() {
        out.push_str("NaN");
    } else if value.is_infinite() {
        out.push_str(if value > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        // Debug, unlike Display, switches to an exponent for large and
        // small magnitudes.
        let _ = write!(out, "{value:?}");
    }
}

/// `{k="v",...}` for labels whose names are already valid (see
/// [`label_name`]); values are escaped. Nothing for no labels.
pub fn write_labels<'a>(out: &mut String, labels: impl IntoIterator<Item = (&'a str, &'a str)>) {
    let mut first = true;
    for (name, value) in labels {
        out.push(if first { '{' } else { ',' });
        first = false;
        out.push_str(name);
        out.push_str("=\"");
        escape_into(out, value, true);
        out.push('"');
    }
    if !first {
        out.push('}');
    }
}

/// Escapes `\` and newlines (and `"` in a label value), as the format says.
fn escape_into(out: &mut String, text: &str, quote: bool) {
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quote => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}

/// A page of the text format being written.
#[derive(Debug, Default)]
pub struct Exposition {
    out: String,
}

impl Exposition {
    pub fn new() -> Exposition {
        Exposition::default()
    }

    /// Starts a family: its `# HELP` and `# TYPE` lines. `name` must be
    /// valid (see [`metric_name`]); for a counter it ends in `_total`.
    pub fn family(&mut self, name: &str, kind: FamilyType, help: &str) {
        self.out.push_str("# HELP ");
        self.out.push_str(name);
        self.out.push(' ');
        escape_into(&mut self.out, help, false);
        self.out.push_str("\n# TYPE ");
        self.out.push_str(name);
        self.out.push(' ');
        self.out.push_str(kind.as_str());
        self.out.push('\n');
    }

    /// One sample line: `name{labels} value`. `labels` is what
    /// [`write_labels`] wrote (or empty).
    pub fn sample(&mut self, name: &str, labels: &str, value: f64) {
        self.out.push_str(name);
        self.out.push_str(labels);
        self.out.push(' ');
        write_value(&mut self.out, value);
        self.out.push('\n');
    }

    /// A sample with its label set and one more label (a summary's
    /// `quantile`), whose name is valid and value needs no escaping.
    pub fn sample_with(&mut self, name: &str, labels: &str, extra: (&str, &str), value: f64) {
        self.out.push_str(name);
        match labels.strip_suffix('}') {
            Some(open) => {
                self.out.push_str(open);
                self.out.push(',');
            }
            None => self.out.push('{'),
        }
        let _ = write!(self.out, "{}=\"{}\"}} ", extra.0, extra.1);
        write_value(&mut self.out, value);
        self.out.push('\n');
    }

    pub fn len(&self) -> usize {
        self.out.len()
    }

    pub fn is_empty(&self) -> bool {
        self.out.is_empty()
    }

    /// The page.
    pub fn finish(self) -> String {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_made_valid() {
        assert_eq!(metric_name("http.response.400"), "http_response_400");
        assert_eq!(metric_name("ok_name"), "ok_name");
        assert!(matches!(metric_name("ok_name"), Cow::Borrowed(_)));
        assert_eq!(metric_name("a-b:c"), "a_b_c");
        assert_eq!(metric_name("9lives"), "_9lives");
        assert_eq!(metric_name(""), "_");
        assert_eq!(metric_name("é.x"), "__x");
        assert_eq!(label_name("team"), "team");
        assert_eq!(label_name("k8s.pod-name"), "k8s_pod_name");
        assert_eq!(label_name("__name__"), "tag__name__");
        assert_eq!(label_name("1a"), "_1a");
    }

    #[test]
    fn values_are_written_as_prometheus_reads_them() {
        let text = |v: f64| {
            let mut s = String::new();
            write_value(&mut s, v);
            s
        };
        assert_eq!(text(1.0), "1.0");
        assert_eq!(text(0.25), "0.25");
        assert_eq!(text(1e200), "1e200");
        assert_eq!(text(-3.0), "-3.0");
        assert_eq!(text(f64::INFINITY), "+Inf");
        assert_eq!(text(f64::NEG_INFINITY), "-Inf");
        assert_eq!(text(f64::NAN), "NaN");
        for v in [1e200, 0.1, 123456789.125, 1e-300] {
            assert_eq!(text(v).parse::<f64>().unwrap(), v);
        }
    }

    #[test]
    fn a_page_has_headers_samples_and_escaped_labels() {
        let mut page = Exposition::new();
        page.family("hits_total", FamilyType::Counter, "a \\ help\nline");
        let mut labels = String::new();
        write_labels(&mut labels, [("path", "/a\"b\\c\nd"), ("team", "x")]);
        page.sample("hits_total", &labels, 3.0);
        page.family("lat", FamilyType::Summary, "latency");
        page.sample_with("lat", "", ("quantile", "0.5"), 2.0);
        page.sample_with("lat", &labels, ("quantile", "0.9"), 4.0);
        page.sample("lat_sum", "", 6.0);
        assert_eq!(
            page.finish(),
            "# HELP hits_total a \\\\ help\\nline\n# TYPE hits_total counter\n\
             hits_total{path=\"/a\\\"b\\\\c\\nd\",team=\"x\"} 3.0\n\
             # HELP lat latency\n# TYPE lat summary\n\
             lat{quantile=\"0.5\"} 2.0\n\
             lat{path=\"/a\\\"b\\\\c\\nd\",team=\"x\",quantile=\"0.9\"} 4.0\n\
             lat_sum 6.0\n"
        );
    }
}

//! Alert templates (`text`, `subject`): minijinja, with the Go form of the
//! original (`{{ .count }}`) accepted by rewriting it before compiling.
//!
//! Templates are checked when the config is loaded: a syntax error or a
//! variable that does not exist is a config error, not an email that fails
//! at 3 a.m. Rendering is strict for the same reason: an undefined variable
//! is an error, never an empty string.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use minijinja::{Environment, UndefinedBehavior, Value};
use serde::Serialize;

/// Every variable a template may use.
pub const VARIABLES: &[&str] = &[
    "count",
    "value",
    "threshold",
    "op",
    "metric",
    "window",
    "level",
    "service",
    "environment",
    "fired_at",
    "message",
    "group",
    "labels",
    "burn_rate",
    "budget_consumed",
    "budget_remaining",
    "budget_exhausted_in",
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("template error: {0}")]
    Syntax(String),
    #[error(
        "unknown template variable{} {} (known: {})",
        if .0.len() > 1 { "s" } else { "" },
        .0.iter().map(|v| format!("`{v}`")).collect::<Vec<_>>().join(", "),
        VARIABLES.join(", ")
    )]
    UnknownVariables(Vec<String>),
    #[error("could not render template: {0}")]
    Render(String),
}

/// What a template sees. `count` and `value` are the same number; numbers
/// with no fractional part render without one (`5`, not `5.0`).
#[derive(Debug, Clone, Serialize)]
pub struct TemplateVars {
    pub count: Value,
    pub value: Value,
    pub threshold: Value,
    pub op: String,
    pub metric: String,
    pub window: String,
    pub level: usize,
    pub service: String,
    pub environment: String,
    pub fired_at: String,
    pub message: String,
    /// A grouped monitor's group (`route=/checkout, code=500`); empty
    /// otherwise.
    pub group: String,
    /// The group's tags (`{{ labels.route }}`); empty without `group_by`.
    pub labels: std::collections::BTreeMap<String, String>,
    /// A burn-rate trigger's long-window burn rate; empty for others.
    pub burn_rate: Value,
    /// The share of the SLO's error budget spent over its period, percent;
    /// empty for others.
    pub budget_consumed: Value,
    /// 100 - `budget_consumed`; empty for others.
    pub budget_remaining: Value,
    /// `in 2d 3h` (at the long window's rate), `exhausted`, or `never at
    /// this rate`; empty for others.
    pub budget_exhausted_in: Value,
}

/// A number as templates show it: integers without `.0`, others rounded to
/// a precision a human reads in a mail; no data as `no data`.
pub fn number(v: Option<f64>) -> Value {
    match v {
        None => Value::from("no data"),
        Some(x) if x.fract() == 0.0 && x.abs() < 1e15 => Value::from(x as i64),
        Some(x) => Value::from((x * 1000.0).round() / 1000.0),
    }
}

fn environment() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        // Mail is plain text: never HTML-escape.
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
        env.set_keep_trailing_newline(true);
        env
    })
}

/// Rewrites the Go template form (`{{ .count }}`) into minijinja's
/// (`{{ count }}`): inside `{{ }}` and `{% %}` tags, a `.` that starts a name
/// is dropped — but not one written right after a name, `)` or `]` (that is
/// attribute access, `a.b`), nor one inside a string or a number.
pub fn rewrite_go_style(src: &str) -> String {
    let mut out = String::with_capacity(src.len());
    let mut rest = src;
    while let Some(start) = rest.find(['{']) {
        let (before, tail) = rest.split_at(start);
        out.push_str(before);
        let close = if tail.starts_with("{{") {
            "}}"
        } else if tail.starts_with("{%") {
            "%}"
        } else {
            out.push('{');
            rest = &tail[1..];
            continue;
        };
        let Some(end) = tail[2..].find(close) else {
            // Unclosed tag: leave it for the compiler to report.
            out.push_str(tail);
            return out;
        };
        let inner = &tail[2..2 + end];
        out.push_str(&tail[..2]);
        rewrite_tag(inner, &mut out);
        out.push_str(close);
        rest = &tail[2 + end + 2..];
    }
    out.push_str(rest);
    out
}

fn rewrite_tag(inner: &str, out: &mut String) {
    let mut quote: Option<char> = None;
    let mut prev: Option<char> = None;
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        if let Some(q) = quote {
            out.push(c);
            if c == '\\' {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            } else if c == q {
                quote = None;
            }
            prev = Some(c);
            continue;
        }
        if c == '"' || c == '\'' {
            quote = Some(c);
        } else if c == '.' {
            let starts_name = chars
                .peek()
                .is_some_and(|n| n.is_ascii_alphabetic() || *n == '_');
            let follows_value =
                prev.is_some_and(|p| p.is_alphanumeric() || p == '_' || p == ')' || p == ']');
            if starts_name && !follows_value {
                prev = Some(c);
                continue;
            }
        }
        out.push(c);
        prev = Some(c);
    }
}

/// Checks that `src` compiles and uses only [`VARIABLES`] (and minijinja's
/// own globals such as `range`).
pub fn check(src: &str) -> Result<(), TemplateError> {
    let env = environment();
    let rewritten = rewrite_go_style(src);
    let template = env
        .template_from_str(&rewritten)
        .map_err(|e| TemplateError::Syntax(describe_at(&e, &rewritten)))?;
    let globals: BTreeSet<&str> = env.globals().map(|(name, _)| name).collect();
    let mut unknown: Vec<String> = template
        .undeclared_variables(false)
        .into_iter()
        .filter(|v| !VARIABLES.contains(&v.as_str()) && !globals.contains(v.as_str()))
        .collect();
    unknown.sort();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(TemplateError::UnknownVariables(unknown))
    }
}

/// Renders `src` (checked at load time) with `vars`.
pub fn render(src: &str, vars: &TemplateVars) -> Result<String, TemplateError> {
    environment()
        .render_str(&rewrite_go_style(src), vars)
        .map_err(|e| TemplateError::Render(describe(&e)))
}

/// The error with the place in the template where it is: the text around
/// it, so a long template points at the broken tag.
fn describe_at(e: &minijinja::Error, src: &str) -> String {
    let mut s = describe(e);
    if let Some(range) = e.range() {
        let start = floor_char_boundary(src, range.start.saturating_sub(12));
        let end = floor_char_boundary(src, (range.end + 12).min(src.len()));
        let column = src[..floor_char_boundary(src, range.start)].chars().count() + 1;
        s.push_str(&format!(
            ", at character {column}: `{}`",
            src[start..end].replace('\n', "\\n")
        ));
    }
    s
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn describe(e: &minijinja::Error) -> String {
    let mut s = match e.detail() {
        Some(detail) => format!("{}: {detail}", e.kind()),
        None => e.kind().to_string(),
    };
    if let Some(line) = e.line() {
        s.push_str(&format!(" (line {line} of the template)"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> TemplateVars {
        TemplateVars {
            count: number(Some(5.0)),
            value: number(Some(5.0)),
            threshold: number(Some(3.0)),
            op: ">=".into(),
            metric: "http.response.400".into(),
            window: "20s".into(),
            level: 1,
            service: "shop".into(),
            environment: "prod".into(),
            fired_at: "2024-01-01T00:00:00Z".into(),
            message: "it broke".into(),
            group: String::new(),
            labels: Default::default(),
            burn_rate: number(Some(14.4)),
            budget_consumed: number(Some(2.5)),
            budget_remaining: number(Some(97.5)),
            budget_exhausted_in: Value::from("in 2d 3h"),
        }
    }

    #[test]
    fn go_style_is_rewritten() {
        assert_eq!(rewrite_go_style("a {{ .count }} b"), "a {{ count }} b");
        assert_eq!(rewrite_go_style("{{.count}}"), "{{count}}");
        assert_eq!(
            rewrite_go_style("{{ .value | round(2) }}"),
            "{{ value | round(2) }}"
        );
        assert_eq!(
            rewrite_go_style("{% if .count > 1.5 %}x{% endif %}"),
            "{% if count > 1.5 %}x{% endif %}"
        );
        // Attribute access, numbers and strings keep their dots.
        assert_eq!(
            rewrite_go_style("{{ a.b }} {{ 'x.y' }}"),
            "{{ a.b }} {{ 'x.y' }}"
        );
        assert_eq!(rewrite_go_style("{ .x } {{"), "{ .x } {{");
    }

    #[test]
    fn both_forms_render_every_variable() {
        let all = VARIABLES
            .iter()
            .map(|v| format!("{v}={{{{ .{v} }}}}"))
            .collect::<Vec<_>>()
            .join(" ");
        check(&all).unwrap();
        let out = render(&all, &vars()).unwrap();
        assert_eq!(
            out,
            "count=5 value=5 threshold=3 op=>= metric=http.response.400 window=20s level=1 \
             service=shop environment=prod fired_at=2024-01-01T00:00:00Z message=it broke \
             group= labels={} burn_rate=14.4 budget_consumed=2.5 budget_remaining=97.5 \
             budget_exhausted_in=in 2d 3h"
        );
        assert_eq!(
            render(
                "Threshold breached for first degree sla. {{ count }}",
                &vars()
            )
            .unwrap(),
            "Threshold breached for first degree sla. 5"
        );
    }

    #[test]
    fn unknown_variables_and_syntax_errors_are_reported() {
        assert_eq!(
            check("{{ .cuont }} {{ bogus }} {{ count }}"),
            Err(TemplateError::UnknownVariables(vec![
                "bogus".into(),
                "cuont".into()
            ]))
        );
        assert!(matches!(check("{{ count "), Err(TemplateError::Syntax(_))));
        let e = check("Value {{ count }} and {{ value | round( }} then").unwrap_err();
        assert!(e.to_string().contains("at character"), "{e}");
        assert!(e.to_string().contains("round("), "{e}");
        assert!(matches!(check("{% if %}"), Err(TemplateError::Syntax(_))));
        // Loop variables are declared by the template itself.
        check("{% for i in range(2) %}{{ i }}{% endfor %}").unwrap();
    }

    #[test]
    fn numbers_render_for_humans() {
        assert_eq!(number(Some(3.0)).to_string(), "3");
        assert_eq!(number(Some(2.345678)).to_string(), "2.346");
        assert_eq!(number(None).to_string(), "no data");
    }
}

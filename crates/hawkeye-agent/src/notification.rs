//! Turning a transition into the email (or log line) people receive.
//!
//! Subject and text come from the monitor's templates; everything a metric
//! can influence is rendered through them, then the subject is flattened to
//! one line (control characters become spaces) so a template can never put
//! a line break into a header. The mailer checks again before sending.

use std::time::{Duration, UNIX_EPOCH};

use hawkeye_mail::Mail;

use crate::config::{Monitor, Trigger};
use crate::state::{Notice, UnixMillis};
use crate::template::{self, number, TemplateVars};

/// Subject used when neither the trigger nor the monitor has one.
pub const DEFAULT_SUBJECT: &str =
    "[{{ service }}/{{ environment }}] {{ metric }} {{ op }} {{ threshold }} (level {{ level }})";

/// Longest subject sent; longer renders are cut.
const MAX_SUBJECT_CHARS: usize = 200;

/// Everything needed to write one alert.
pub struct Alert<'a> {
    pub monitor: &'a Monitor,
    pub trigger: &'a Trigger,
    /// 1-based trigger index.
    pub level: usize,
    pub notice: Notice,
    /// The value of the check (None: no data).
    pub value: Option<f64>,
    /// When the trigger entered FIRING.
    pub fired_at: Option<UnixMillis>,
    /// When the check that sent this ran.
    pub checked_at: UnixMillis,
    pub service: &'a str,
    pub environment: &'a str,
}

/// A rendered alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub body: String,
}

/// The time as an RFC 3339 date; times past the year 9999 (which no agent
/// writes) show as the last second of 9999 rather than panicking.
pub fn rfc3339(ms: UnixMillis) -> String {
    let ms = ms.min(crate::state::MAX_TIME);
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

fn describe_window(m: &Monitor) -> String {
    humantime::format_duration(Duration::from_secs(m.window_secs())).to_string()
}

/// `sum of http.response.400{route:/a} over 20s`, or for a ratio
/// `http.response.5xx / http.requests (%) over 5m`.
fn describe_series(m: &Monitor) -> String {
    let tags = if m.tags.is_empty() {
        String::new()
    } else {
        let t: Vec<String> = m.tags.0.iter().map(|(k, v)| format!("{k}:{v}")).collect();
        format!("{{{}}}", t.join(","))
    };
    let what = match &m.ratio_of {
        Some(other) => format!(
            "{} of {}{tags} / {other}{tags}{}",
            m.aggregation,
            m.metric,
            if m.percent { " (%)" } else { "" }
        ),
        None => format!("{} of {}{tags}", m.aggregation, m.metric),
    };
    format!("{what} over {}", describe_window(m))
}

/// The sentence saying what happened (`message` in templates).
pub fn message(a: &Alert) -> String {
    let series = describe_series(a.monitor);
    let op = a.trigger.op;
    let threshold = number(Some(a.trigger.threshold));
    let value = match a.value {
        Some(v) => format!("is {}", number(Some(v))),
        None => "has no data".to_string(),
    };
    let since = a
        .fired_at
        .map(|t| format!(" since {}", rfc3339(t)))
        .unwrap_or_default();
    let level = a.level;
    match a.notice {
        Notice::Firing => format!("{series} {value}, breaching {op} {threshold} (level {level})."),
        Notice::Repeat => format!("Still firing{since}: {series} {value}, breaching {op} {threshold} (level {level})."),
        Notice::Resolved => format!("Resolved: {series} {value}, no longer {op} {threshold} (level {level}, firing{since})."),
    }
}

fn vars(a: &Alert, message: &str) -> TemplateVars {
    TemplateVars {
        count: number(a.value),
        value: number(a.value),
        threshold: number(Some(a.trigger.threshold)),
        op: a.trigger.op.symbol().to_string(),
        metric: a.monitor.metric.clone(),
        window: describe_window(a.monitor),
        level: a.level,
        service: a.service.to_string(),
        environment: a.environment.to_string(),
        fired_at: a.fired_at.map(rfc3339).unwrap_or_default(),
        message: message.to_string(),
    }
}

/// Templates were checked when the file was loaded; should one still fail
/// (a filter erroring on a value), the alert goes out with the plain
/// message rather than not at all.
fn render_or(src: &str, vars: &TemplateVars, fallback: &str) -> String {
    match template::render(src, vars) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(template = src, error = %e, "alert template failed; using the default text");
            fallback.to_string()
        }
    }
}

/// One line, no control characters, bounded length.
pub fn one_line(s: &str) -> String {
    let flat: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let collapsed = flat.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.chars().count() > MAX_SUBJECT_CHARS {
        let mut cut: String = collapsed.chars().take(MAX_SUBJECT_CHARS - 1).collect();
        cut.push('…');
        cut
    } else {
        collapsed
    }
}

pub fn render(a: &Alert) -> Rendered {
    let message = message(a);
    let vars = vars(a, &message);
    let subject_src = a
        .trigger
        .subject
        .as_deref()
        .or(a.monitor.subject.as_deref())
        .unwrap_or(DEFAULT_SUBJECT);
    let default_subject = render_or(DEFAULT_SUBJECT, &vars, "hawkeye alert");
    let subject = one_line(&render_or(subject_src, &vars, &default_subject));
    let subject = match a.notice {
        Notice::Resolved => format!("[RESOLVED] {subject}"),
        _ => subject,
    };
    // The trigger's text describes a breach; a resolved mail says what
    // happened instead of repeating it.
    let headline = match (a.notice, &a.trigger.text) {
        (Notice::Firing | Notice::Repeat, Some(text)) => {
            let rendered = render_or(text, &vars, &message);
            if rendered.contains(&message) {
                rendered
            } else {
                format!("{}\n\n{message}", rendered.trim_end())
            }
        }
        _ => message.clone(),
    };
    let mut body = headline;
    body.push_str("\n\n");
    body.push_str(&format!("Metric:      {}\n", describe_series(a.monitor)));
    body.push_str(&format!("Value:       {}\n", number(a.value)));
    body.push_str(&format!(
        "Threshold:   {} {}\n",
        a.trigger.op,
        number(Some(a.trigger.threshold))
    ));
    body.push_str(&format!("Level:       {}\n", a.level));
    body.push_str(&format!("Service:     {} ({})\n", a.service, a.environment));
    if let Some(t) = a.fired_at {
        body.push_str(&format!("Firing since: {}\n", rfc3339(t)));
    }
    body.push_str(&format!(
        "Checked at:  {}\n",
        humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(a.checked_at))
    ));
    Rendered { subject, body }
}

pub fn mail(a: &Alert, from: &str) -> Mail {
    let r = render(a);
    Mail {
        subject: r.subject,
        body: r.body,
        from: from.to_string(),
        to: a.trigger.to.clone(),
        cc: a.trigger.cc.clone(),
        bcc: a.trigger.bcc.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_monitors;

    fn fixture() -> Monitor {
        parse_monitors(
            "version: 1\nmonitors:\n  - metric: http.response.400\n    interval: 20\n    subject: \"4xx {{ .count }}\\r\\nBcc: evil@example.com\"\n    triggers:\n      - threshold: 3\n        run_every: 5\n        text: \"Threshold breached for first degree sla. {{ .count }}\"\n        to: [oncall@example.com]\n",
            "t",
        )
        .unwrap()
        .monitors
        .remove(0)
    }

    fn alert<'a>(m: &'a Monitor, notice: Notice, value: Option<f64>) -> Alert<'a> {
        Alert {
            monitor: m,
            trigger: &m.triggers[0],
            level: 1,
            notice,
            value,
            fired_at: Some(0),
            checked_at: 0,
            service: "shop",
            environment: "prod",
        }
    }

    #[test]
    fn dates_past_9999_do_not_panic() {
        assert_eq!(rfc3339(u64::MAX), "9999-12-31T23:59:59Z");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn firing_mail_has_the_rendered_text_and_a_one_line_subject() {
        let m = fixture();
        let mail = mail(&alert(&m, Notice::Firing, Some(5.0)), "hawkeye@localhost");
        assert_eq!(mail.subject, "4xx 5 Bcc: evil@example.com");
        assert!(
            mail.body
                .starts_with("Threshold breached for first degree sla. 5\n"),
            "{}",
            mail.body
        );
        assert!(
            mail.body
                .contains("sum of http.response.400 over 20s is 5, breaching >= 3"),
            "{}",
            mail.body
        );
        assert_eq!(mail.to, ["oncall@example.com"]);
        hawkeye_mail::build_message(&mail).unwrap();
    }

    #[test]
    fn resolved_mail_says_so() {
        let m = fixture();
        let r = render(&alert(&m, Notice::Resolved, Some(0.0)));
        assert!(r.subject.starts_with("[RESOLVED] "), "{}", r.subject);
        assert!(
            r.body
                .starts_with("Resolved: sum of http.response.400 over 20s is 0, no longer >= 3"),
            "{}",
            r.body
        );
    }

    #[test]
    fn default_subject() {
        let mut m = fixture();
        m.subject = None;
        let r = render(&alert(&m, Notice::Firing, Some(5.0)));
        assert_eq!(r.subject, "[shop/prod] http.response.400 >= 3 (level 1)");
    }

    #[test]
    fn one_line_cuts_and_flattens() {
        assert_eq!(one_line("a\r\n b\tc\u{7}"), "a b c");
        assert_eq!(
            one_line(&"x".repeat(500)).chars().count(),
            MAX_SUBJECT_CHARS
        );
    }
}

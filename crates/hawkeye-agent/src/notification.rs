//! Turning a transition into the email (or log line) people receive.
//!
//! Subject and text come from the monitor's templates; everything a metric
//! can influence is rendered through them, then the subject is flattened to
//! one line (control characters become spaces) so a template can never put
//! a line break into a header. The mailer checks again before sending.

use std::time::{Duration, UNIX_EPOCH};

use hawkeye_mail::Mail;

use crate::error_budget::BurnCheck;
use crate::monitors::{Monitor, Trigger};
use crate::slo_notice;
use crate::state::{Notice, UnixMillis};
use crate::template::{self, number, TemplateVars};

/// Subject used when neither the trigger nor the monitor has one.
pub const DEFAULT_SUBJECT: &str =
    "[{{ service }}/{{ environment }}] {{ metric }} {{ op }} {{ threshold }} (level {{ level }})";

/// The default subject of a grouped monitor's alerts: it names the group.
pub const DEFAULT_GROUP_SUBJECT: &str =
    "[{{ service }}/{{ environment }}] {{ metric }} {{ group }} {{ op }} {{ threshold }} (level {{ level }})";

/// The default subject of a burn-rate trigger's alerts (SLO monitors).
pub const DEFAULT_SLO_SUBJECT: &str =
    "[{{ service }}/{{ environment }}] {{ metric }} error budget burning >= {{ threshold }}x (level {{ level }})";

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
    /// The trigger was removed from the monitors file (its last mail).
    pub removed: bool,
    /// The group of a monitor with `group_by` (tag, value), in its order;
    /// empty otherwise.
    pub group: &'a [(String, String)],
    /// A burn-rate trigger's check (SLO monitors): what the notice states.
    pub burn: Option<BurnCheck>,
}

/// A group as subjects and bodies show it: `route=/checkout, code=500`.
pub fn describe_group(group: &[(String, String)]) -> String {
    let tags: Vec<String> = group.iter().map(|(k, v)| format!("{k}={v}")).collect();
    tags.join(", ")
}

/// Who a mail goes to: the trigger's recipients, less those a higher
/// level already mails (inhibition).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recipients {
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub bcc: Vec<String>,
    /// Webhook URLs: told, inhibited and resolved as a mailbox is.
    pub hooks: Vec<String>,
}

impl Recipients {
    pub fn of(t: &Trigger) -> Recipients {
        Recipients {
            to: t.to.clone(),
            cc: t.cc.clone(),
            bcc: t.bcc.clone(),
            hooks: t.webhooks.clone(),
        }
    }

    /// These recipients without `others` (mailboxes as [`normalize`]d).
    pub fn without(&self, others: &std::collections::HashSet<String>) -> Recipients {
        self.filter(|mailbox| !others.contains(mailbox))
    }

    /// These recipients, only those in `these` (mailboxes as [`normalize`]d).
    pub fn only(&self, these: &std::collections::HashSet<String>) -> Recipients {
        self.filter(|mailbox| these.contains(mailbox))
    }

    fn filter(&self, keep: impl Fn(&String) -> bool) -> Recipients {
        let keep = |list: &Vec<String>| {
            list.iter()
                .filter(|a| keep(&normalize(a)))
                .cloned()
                .collect()
        };
        Recipients {
            to: keep(&self.to),
            cc: keep(&self.cc),
            bcc: keep(&self.bcc),
            hooks: keep(&self.hooks),
        }
    }

    /// Every mailbox and webhook, [`normalize`]d.
    pub fn mailboxes(&self) -> impl Iterator<Item = String> + '_ {
        self.to
            .iter()
            .chain(&self.cc)
            .chain(&self.bcc)
            .chain(&self.hooks)
            .map(|a| normalize(a))
    }

    /// Whether a mail is to be sent (someone in to, cc or bcc).
    pub fn has_mail(&self) -> bool {
        !(self.to.is_empty() && self.cc.is_empty() && self.bcc.is_empty())
    }

    pub fn is_empty(&self) -> bool {
        !self.has_mail() && self.hooks.is_empty()
    }
}

/// An address as compared for inhibition: the mailbox, lower case; a
/// webhook URL as written (its path may be case-sensitive).
pub fn normalize(address: &str) -> String {
    if address.contains("://") {
        return address.trim().to_string();
    }
    hawkeye_mail::parse_mailbox(address)
        .map(|m| m.email.to_string())
        .unwrap_or_else(|_| address.trim().to_string())
        .to_ascii_lowercase()
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

pub(crate) fn describe_window(m: &Monitor) -> String {
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
    let fired_for = a
        .fired_at
        .map(|t| {
            let d = Duration::from_secs(a.checked_at.saturating_sub(t) / 1000);
            format!(" for {}", humantime::format_duration(d))
        })
        .unwrap_or_default();
    let level = a.level;
    if let Some(check) = &a.burn {
        let what = (a.notice, a.removed, level, a.trigger.threshold);
        return slo_notice::message(a.monitor, check, what, (&since, &fired_for));
    }
    match a.notice {
        Notice::Firing => format!("{series} {value}, breaching {op} {threshold} (level {level})."),
        Notice::Repeat => format!("Still firing{since}: {series} {value}, breaching {op} {threshold} (level {level})."),
        Notice::Resolved if a.removed => format!("Resolved: the trigger {op} {threshold} (level {level}) on {series} was removed from the monitors file (it fired{fired_for}{since})."),
        Notice::Resolved => format!("Resolved: {series} {value}, no longer {op} {threshold} (level {level}, fired{fired_for}{since})."),
    }
}

fn vars(a: &Alert, message: &str) -> TemplateVars {
    let [burn_rate, budget_consumed, budget_remaining, budget_exhausted_in] =
        slo_notice::vars(a.burn.as_ref());
    TemplateVars {
        burn_rate,
        budget_consumed,
        budget_remaining,
        budget_exhausted_in,
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
        group: describe_group(a.group),
        labels: a.group.iter().cloned().collect(),
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
    let default_src = if a.burn.is_some() {
        DEFAULT_SLO_SUBJECT
    } else if a.group.is_empty() {
        DEFAULT_SUBJECT
    } else {
        DEFAULT_GROUP_SUBJECT
    };
    let subject_src = a
        .trigger
        .subject
        .as_deref()
        .or(a.monitor.subject.as_deref())
        .unwrap_or(default_src);
    let default_subject = render_or(default_src, &vars, "hawkeye alert");
    // A resolved check often has no data: the user's subject would show
    // "no data" where it showed the value, so it gets the default subject.
    let subject_src = match (a.notice, a.value) {
        (Notice::Resolved, None) => default_src,
        _ => subject_src,
    };
    let subject = one_line(&render_or(subject_src, &vars, &default_subject));
    let subject = match a.notice {
        Notice::Firing => subject,
        Notice::Repeat => format!("[REPEAT] {subject}"),
        Notice::Resolved => format!("[RESOLVED] {subject}"),
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
    match &a.burn {
        Some(check) => body.push_str(&slo_notice::body_lines(
            a.monitor,
            check,
            a.trigger.threshold,
        )),
        None => {
            body.push_str(&format!("Metric:      {}\n", describe_series(a.monitor)));
            body.push_str(&format!("Value:       {}\n", number(a.value)));
            body.push_str(&format!(
                "Threshold:   {} {}\n",
                a.trigger.op,
                number(Some(a.trigger.threshold))
            ));
        }
    }
    if !a.group.is_empty() {
        body.push_str(&format!("Group:       {}\n", describe_group(a.group)));
    }
    body.push_str(&format!("Level:       {}\n", a.level));
    body.push_str(&format!("Service:     {} ({})\n", a.service, a.environment));
    if let Some(t) = a.fired_at {
        body.push_str(&format!("Firing since: {}\n", rfc3339(t)));
    }
    body.push_str(&format!(
        "Checked at:  {}\n",
        humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(a.checked_at))
    ));
    if let Some(url) = a.trigger.runbook.as_ref().or(a.monitor.runbook.as_ref()) {
        body.push_str(&format!("Runbook:     {url}\n"));
    }
    let mut annotations = a.monitor.annotations.clone();
    annotations.extend(a.trigger.annotations.clone());
    if !annotations.is_empty() {
        body.push('\n');
        for (k, v) in annotations {
            body.push_str(&format!("{k}: {v}\n"));
        }
    }
    Rendered { subject, body }
}

/// The mail of an alert to `to`, with its stable `Message-ID`; `r` is the
/// alert as [`render`]ed (rendered once per notice, for mail and webhooks).
pub fn mail(a: &Alert, r: Rendered, from: &str, to: &Recipients, message_id: &str) -> Mail {
    Mail {
        subject: r.subject,
        body: r.body,
        from: from.to_string(),
        to: to.to.clone(),
        cc: to.cc.clone(),
        bcc: to.bcc.clone(),
        message_id: Some(message_id.to_string()),
        date: Some(UNIX_EPOCH + Duration::from_millis(a.checked_at)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitors::parse_monitors;

    fn fixture() -> Monitor {
        parse_monitors(
            "version: 1\nmonitors:\n  - metric: http.response.400\n    interval: 20\n    subject: \"4xx {{ .count }}\\r\\nBcc: evil@example.com\"\n    triggers:\n      - threshold: 3\n        run_every: 5\n        text: \"Threshold breached for first degree sla. {{ .count }}\"\n        to: [oncall@example.com]\n",
            "t",
            Duration::from_secs(3600),
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
            removed: false,
            group: &[],
            burn: None,
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
        let a = alert(&m, Notice::Firing, Some(5.0));
        let mail = mail(
            &a,
            render(&a),
            "hawkeye@localhost",
            &Recipients::of(a.trigger),
            "e1.firing@hawkeye",
        );
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
        let mut a = alert(&m, Notice::Resolved, Some(0.0));
        a.checked_at = 200_000;
        let r = render(&a);
        assert!(r.subject.starts_with("[RESOLVED] 4xx 0"), "{}", r.subject);
        assert!(
            r.body.starts_with(
                "Resolved: sum of http.response.400 over 20s is 0, no longer >= 3 (level 1, fired for 3m 20s since 1970-01-01T00:00:00Z)."
            ),
            "{}",
            r.body
        );
        // No data: never "no data" where the subject showed the value.
        let r = render(&alert(&m, Notice::Resolved, None));
        assert_eq!(
            r.subject,
            "[RESOLVED] [shop/prod] http.response.400 >= 3 (level 1)"
        );
        let r = render(&alert(&m, Notice::Repeat, Some(9.0)));
        assert!(r.subject.starts_with("[REPEAT] 4xx 9"), "{}", r.subject);
    }

    #[test]
    fn default_subject() {
        let mut m = fixture();
        m.subject = None;
        let r = render(&alert(&m, Notice::Firing, Some(5.0)));
        assert_eq!(r.subject, "[shop/prod] http.response.400 >= 3 (level 1)");
    }

    #[test]
    fn a_group_is_named_by_the_default_subject_the_templates_and_the_body() {
        let mut m = fixture();
        m.subject = None;
        let group = [
            ("route".to_string(), "/checkout".to_string()),
            ("code".to_string(), "500".to_string()),
        ];
        let a = Alert {
            group: &group,
            ..alert(&m, Notice::Firing, Some(5.0))
        };
        let r = render(&a);
        assert_eq!(
            r.subject,
            "[shop/prod] http.response.400 route=/checkout, code=500 >= 3 (level 1)"
        );
        assert!(
            r.body.contains("Group:       route=/checkout, code=500\n"),
            "{}",
            r.body
        );
        m.subject = Some("{{ labels.route }} failing ({{ group }})".into());
        let a = Alert {
            group: &group,
            ..alert(&m, Notice::Repeat, Some(5.0))
        };
        assert_eq!(
            render(&a).subject,
            "[REPEAT] /checkout failing (route=/checkout, code=500)"
        );
    }

    #[test]
    fn runbook_and_annotations_are_in_the_body() {
        let mut m = fixture();
        m.runbook = Some("https://wiki.example.com/4xx".into());
        m.annotations.insert("team".into(), "web".into());
        m.triggers[0]
            .annotations
            .insert("team".into(), "payments".into());
        m.triggers[0]
            .annotations
            .insert("dashboard".into(), "https://grafana/x".into());
        let r = render(&alert(&m, Notice::Firing, Some(5.0)));
        assert!(
            r.body
                .contains("Runbook:     https://wiki.example.com/4xx\n"),
            "{}",
            r.body
        );
        assert!(
            r.body
                .contains("\ndashboard: https://grafana/x\nteam: payments\n"),
            "{}",
            r.body
        );
    }

    #[test]
    fn inhibition_removes_the_recipients_a_higher_level_mails() {
        let t = Trigger {
            cc: vec!["Lead <LEAD@example.com>".into()],
            ..Trigger::new(1.0, &["a@example.com", "b@example.com"])
        };
        let higher: std::collections::HashSet<String> = ["b@example.com", "lead@example.com"]
            .map(String::from)
            .into();
        let left = Recipients::of(&t).without(&higher);
        assert_eq!(left.to, ["a@example.com"]);
        assert!(left.cc.is_empty());
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

//! What a trigger's webhooks receive (`docs/alerts.md`, "Webhooks"): one
//! JSON object per notice, written when the notice is recorded so that every
//! retry posts the same bytes, or Slack's incoming-webhook body.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::monitors::WebhookFormat;
use crate::notification::{describe_window, rfc3339, Alert, Rendered};
use crate::state::Notice;

/// hawkeye's own body. Field names follow the alert, as Alertmanager's
/// webhook does, so a receiver can route on `status`, `monitor` and
/// `group`, and drop a repeat by `id` + `notice`.
#[derive(Serialize)]
struct Payload<'a> {
    /// The episode (a trigger, from the check it began firing): the same in
    /// its firing, repeat and resolved posts.
    id: &'a str,
    /// `firing` or `resolved` (a repeat is `firing`).
    status: &'static str,
    /// `firing`, `repeat` or `resolved`.
    notice: &'static str,
    /// The monitor's `id`, else its metric.
    monitor: &'a str,
    metric: &'a str,
    level: usize,
    /// `null` when the window had no data.
    value: Option<f64>,
    threshold: f64,
    op: &'static str,
    window: String,
    group: BTreeMap<&'a str, &'a str>,
    fired_at: Option<String>,
    checked_at: String,
    subject: &'a str,
    text: &'a str,
    runbook: Option<&'a str>,
    annotations: BTreeMap<&'a str, &'a str>,
    service: &'a str,
    environment: &'a str,
    /// A burn-rate trigger's SLO figures (absent for other triggers).
    #[serde(skip_serializing_if = "Option::is_none")]
    slo: Option<crate::slo_notice::SloPayload>,
}

/// The body posted for `alert`, rendered as `rendered`, in `format`;
/// `episode` is the episode's id ([`crate::outbox::episode`]).
pub fn body(alert: &Alert, rendered: &Rendered, episode: &str, format: WebhookFormat) -> String {
    match format {
        WebhookFormat::Json => json(alert, rendered, episode),
        WebhookFormat::Slack => slack(rendered),
    }
}

fn json(a: &Alert, r: &Rendered, episode: &str) -> String {
    let m = a.monitor;
    let mut annotations: BTreeMap<&str, &str> = BTreeMap::new();
    for (k, v) in m.annotations.iter().chain(&a.trigger.annotations) {
        annotations.insert(k, v);
    }
    let payload = Payload {
        id: episode,
        status: match a.notice {
            Notice::Resolved => "resolved",
            Notice::Firing | Notice::Repeat => "firing",
        },
        notice: a.notice.name(),
        monitor: m.id.as_deref().unwrap_or(&m.metric),
        metric: &m.metric,
        level: a.level,
        value: a.value.filter(|v| v.is_finite()),
        threshold: a.trigger.threshold,
        op: a.trigger.op.symbol(),
        window: describe_window(m),
        group: a.group.iter().map(|(k, v)| (&**k, &**v)).collect(),
        fired_at: a.fired_at.map(rfc3339),
        checked_at: rfc3339(a.checked_at),
        subject: &r.subject,
        text: &r.body,
        runbook: a.trigger.runbook.as_deref().or(m.runbook.as_deref()),
        annotations,
        service: a.service,
        environment: a.environment,
        slo: a.burn.as_ref().map(crate::slo_notice::SloPayload::of),
    };
    serde_json::to_string(&payload).unwrap_or_else(|_| "{}".to_string())
}

/// Slack's incoming webhook shows `text` (its mrkdwn: the subject in bold).
fn slack(r: &Rendered) -> String {
    let text = format!("*{}*\n{}", escape_slack(&r.subject), escape_slack(&r.body));
    Value::Object(
        [("text".to_string(), Value::String(text))]
            .into_iter()
            .collect(),
    )
    .to_string()
}

/// Slack reads `&`, `<` and `>` as markup (links, mentions): a metric or a
/// group value must not become one.
fn escape_slack(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitors::parse_monitors;
    use crate::notification::render;

    fn monitor() -> crate::monitors::Monitor {
        parse_monitors(
            "version: 1\nmonitors:\n  - id: checkout-errors\n    metric: http.errors\n    window: 5m\n    group_by: [route]\n    runbook: https://wiki/x\n    annotations: {team: web}\n    triggers:\n      - threshold: 10\n        op: '>'\n        webhook: http://127.0.0.1:1/hook\n        annotations: {severity: page}\n",
            "t",
            std::time::Duration::from_secs(3600),
        )
        .unwrap()
        .monitors
        .remove(0)
    }

    fn alert<'a>(m: &'a crate::monitors::Monitor, group: &'a [(String, String)]) -> Alert<'a> {
        Alert {
            monitor: m,
            trigger: &m.triggers[0],
            level: 1,
            notice: Notice::Repeat,
            value: Some(12.5),
            fired_at: Some(1_700_000_000_000),
            checked_at: 1_700_000_060_000,
            service: "shop",
            environment: "prod",
            removed: false,
            group,
            burn: None,
        }
    }

    #[test]
    fn the_json_body_carries_every_documented_field() {
        let m = monitor();
        let group = [("route".to_string(), "/checkout".to_string())];
        let a = alert(&m, &group);
        let r = render(&a);
        let v: Value = serde_json::from_str(&body(&a, &r, "ep1", WebhookFormat::Json)).unwrap();
        assert_eq!(v["id"], "ep1");
        assert_eq!(v["status"], "firing", "a repeat is still firing");
        assert_eq!(v["notice"], "repeat");
        assert_eq!(v["monitor"], "checkout-errors");
        assert_eq!(v["metric"], "http.errors");
        assert_eq!(v["level"], 1);
        assert_eq!(v["value"], 12.5);
        assert_eq!(v["threshold"], 10.0);
        assert_eq!(v["op"], ">");
        assert_eq!(v["window"], "5m");
        assert_eq!(v["group"], serde_json::json!({"route": "/checkout"}));
        assert_eq!(v["fired_at"], "2023-11-14T22:13:20Z");
        assert_eq!(v["runbook"], "https://wiki/x");
        assert_eq!(
            v["annotations"],
            serde_json::json!({"team": "web", "severity": "page"})
        );
        assert_eq!(v["service"], "shop");
        assert_eq!(v["environment"], "prod");
        assert_eq!(v["subject"], r.subject.as_str());
        assert_eq!(v["text"], r.body.as_str());
        assert!(r.subject.contains("route=/checkout"), "{}", r.subject);
        assert!(v.get("slo").is_none(), "only burn-rate triggers have it");
    }

    #[test]
    fn a_burn_rate_triggers_body_carries_its_slo_figures() {
        use crate::error_budget::{BurnCheck, Counts};
        let m = parse_monitors(
            "version: 1\nmonitors:\n  - metric: e\n    ratio_of: r\n    slo: {objective: 99.9, period: 30d}\n    triggers:\n      - {burn_rate: 14.4, long_window: 1h, short_window: 5m, webhook: http://127.0.0.1:1/hook}\n",
            "t",
            crate::monitors::Retention {
                per_second: std::time::Duration::from_secs(3600),
                rollup: std::time::Duration::from_secs(35 * 86_400),
            },
        )
        .unwrap()
        .monitors
        .remove(0);
        let burn = BurnCheck {
            slo: m.slo.unwrap(),
            long_window: std::time::Duration::from_secs(3600),
            short_window: std::time::Duration::from_secs(300),
            long: Counts {
                bad: 30.0,
                all: 1000.0,
            },
            short: Counts {
                bad: 20.0,
                all: 1000.0,
            },
            period: Counts {
                bad: 25.0,
                all: 100_000.0,
            },
        };
        let a = Alert {
            burn: Some(burn),
            value: Some(30.0),
            notice: Notice::Firing,
            ..alert(&m, &[])
        };
        let r = render(&a);
        let v: Value = serde_json::from_str(&body(&a, &r, "ep1", WebhookFormat::Json)).unwrap();
        let slo = &v["slo"];
        assert_eq!(slo["objective"], 99.9);
        assert_eq!(slo["period"], "30d");
        assert_eq!(
            (slo["long_window"].as_str(), slo["short_window"].as_str()),
            (Some("1h"), Some("5m"))
        );
        assert_eq!(
            (
                slo["burn_rate_long"].as_f64(),
                slo["burn_rate_short"].as_f64()
            ),
            (Some(30.0), Some(20.0))
        );
        assert_eq!(slo["budget_consumed"], 25.0);
        assert_eq!(slo["budget_remaining"], 75.0);
        // 75 % of 30 days at 30x: 18 hours.
        assert_eq!(slo["budget_exhausted_in"], "in 18h");
        assert!(
            r.body
                .contains("Budget:      25% consumed, 75% remaining over 30d"),
            "{}",
            r.body
        );
        assert_eq!(v["text"], r.body.as_str());
    }

    #[test]
    fn slack_gets_its_text_body_with_markup_escaped() {
        let m = monitor();
        let group = [("route".to_string(), "<!channel> & co".to_string())];
        let a = alert(&m, &group);
        let r = render(&a);
        let v: Value = serde_json::from_str(&body(&a, &r, "ep1", WebhookFormat::Slack)).unwrap();
        let text = v["text"].as_str().unwrap();
        assert_eq!(v.as_object().unwrap().len(), 1, "only `text`");
        assert!(text.starts_with('*'), "{text}");
        assert!(text.contains("&lt;!channel&gt; &amp; co"), "{text}");
        assert!(!text.contains("<!channel>"), "{text}");
    }
}

//! What the notices of a burn-rate trigger say (docs/alerts.md, "SLO
//! burn-rate alerts"): the burn rate over both windows, the error budget
//! consumed and remaining over the period, and when it runs out at the
//! long window's rate; in the mail's sentence and body, in template
//! variables, and in the webhook's JSON.

use hawkeye_protocol::format_duration;
use minijinja::Value;
use serde::Serialize;

use crate::error_budget::BurnCheck;
use crate::monitors::Monitor;
use crate::state::Notice;
use crate::template::number;

/// `http.errors / http.requests{route:/a} (SLO 99.9% over 30d)`.
fn describe_slo(m: &Monitor, check: &BurnCheck) -> String {
    let tags = if m.tags.is_empty() {
        String::new()
    } else {
        let t: Vec<String> = m.tags.0.iter().map(|(k, v)| format!("{k}:{v}")).collect();
        format!("{{{}}}", t.join(","))
    };
    format!(
        "{}{tags} / {}{tags} (SLO {}% over {})",
        m.metric,
        m.ratio_of.as_deref().unwrap_or_default(),
        number(Some(check.slo.objective)),
        format_duration(check.slo.period)
    )
}

/// `30x over 1h and 28.5x over 5m`.
fn burning(check: &BurnCheck) -> String {
    format!(
        "{}x over {} and {}x over {}",
        number(Some(check.long_burn())),
        format_duration(check.long_window),
        number(Some(check.short_burn())),
        format_duration(check.short_window)
    )
}

/// The sentence saying what happened (`message` in templates). `since`
/// and `fired_for` as the other notices say them (` since …`, ` for …`).
pub(crate) fn message(
    m: &Monitor,
    check: &BurnCheck,
    (notice, removed, level, rate): (Notice, bool, usize, f64),
    (since, fired_for): (&str, &str),
) -> String {
    let slo = describe_slo(m, check);
    let burning = burning(check);
    let rate = number(Some(rate));
    match notice {
        Notice::Firing => format!("Error budget of {slo} burning {burning}, both at or over {rate}x (level {level})."),
        Notice::Repeat => format!("Still firing{since}: error budget of {slo} burning {burning}, both at or over {rate}x (level {level})."),
        Notice::Resolved if removed => format!("Resolved: the burn-rate trigger {rate}x (level {level}) on {slo} was removed from the monitors file (it fired{fired_for}{since})."),
        Notice::Resolved => format!("Resolved: error budget of {slo} burning {burning}, no longer both at or over {rate}x (level {level}, fired{fired_for}{since})."),
    }
}

/// The body's lines about the SLO, in place of the metric, value and
/// threshold lines of other alerts.
pub(crate) fn body_lines(m: &Monitor, check: &BurnCheck, rate: f64) -> String {
    let budget = check.budget();
    let sli = budget
        .sli
        .map(|s| format!(" (SLI {}%)", number(Some(s))))
        .unwrap_or_else(|| " (no events)".to_string());
    let exhaustion = check.exhaustion();
    let at_rate = match exhaustion {
        crate::error_budget::Exhaustion::In(_) => {
            format!(" at the {} burn rate", format_duration(check.long_window))
        }
        _ => String::new(),
    };
    format!(
        "SLO:         {}\nBurn rate:   {} (fires at {}x over both)\nBudget:      {}% consumed, {}% remaining over {}{sli}\nExhausted:   {exhaustion}{at_rate}\n",
        describe_slo(m, check),
        burning(check),
        number(Some(rate)),
        number(Some(budget.consumed)),
        number(Some(budget.remaining)),
        format_duration(check.slo.period),
    )
}

/// The template variables `burn_rate`, `budget_consumed`,
/// `budget_remaining` (percent) and `budget_exhausted_in`; empty strings
/// for an alert that is not a burn-rate trigger's.
pub(crate) fn vars(check: Option<&BurnCheck>) -> [Value; 4] {
    match check {
        None => std::array::from_fn(|_| Value::from("")),
        Some(c) => {
            let budget = c.budget();
            [
                number(Some(c.long_burn())),
                number(Some(budget.consumed)),
                number(Some(budget.remaining)),
                Value::from(c.exhaustion().to_string()),
            ]
        }
    }
}

/// The `slo` object of the webhook's JSON body.
#[derive(Serialize)]
pub(crate) struct SloPayload {
    objective: f64,
    period: String,
    long_window: String,
    short_window: String,
    burn_rate_long: f64,
    burn_rate_short: f64,
    /// Percent of the budget.
    budget_consumed: f64,
    budget_remaining: f64,
    /// `exhausted`, `in 2d 3h` or `never at this rate`.
    budget_exhausted_in: String,
    /// Good events over the period, percent; `null` without events.
    sli: Option<f64>,
}

impl SloPayload {
    pub(crate) fn of(check: &BurnCheck) -> SloPayload {
        let budget = check.budget();
        SloPayload {
            objective: check.slo.objective,
            period: format_duration(check.slo.period),
            long_window: format_duration(check.long_window),
            short_window: format_duration(check.short_window),
            burn_rate_long: check.long_burn(),
            burn_rate_short: check.short_burn(),
            budget_consumed: budget.consumed,
            budget_remaining: budget.remaining,
            budget_exhausted_in: check.exhaustion().to_string(),
            sli: budget.sli,
        }
    }
}

//! What a monitors file holds once loaded: monitors, triggers and their
//! settings, with the defaults of the file format (`docs/monitors.md`).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use hawkeye_protocol::{MetricKind, TagFilter};
use hawkeye_store::Aggregation;

use super::maintenance::MaintenanceWindow;

/// Default check period when a monitor names none.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
/// Default least time between repeated emails when a trigger names none.
pub const DEFAULT_RUN_EVERY: Duration = Duration::from_secs(3600);
/// Groups a grouped monitor evaluates when it names no `max_groups`.
pub const DEFAULT_MAX_GROUPS: usize = 1000;
/// The largest `max_groups` (each group is a state per trigger).
pub const MAX_MAX_GROUPS: usize = 100_000;
/// How long a group without data is still evaluated when a monitor names
/// no `group_stale_after`.
pub const DEFAULT_GROUP_STALE_AFTER: Duration = Duration::from_secs(300);
/// How long a gauge keeps its last value when a monitor names nothing.
pub const DEFAULT_GAUGE_STALE_AFTER: Duration = Duration::from_secs(300);

/// A loaded, valid monitors file.
#[derive(Debug, Clone, PartialEq)]
pub struct MonitorsFile {
    pub version: u32,
    pub monitors: Vec<Monitor>,
    /// What loaded, but not as written, one `file:line:col: message` each
    /// (`interval: 0`, read as 60s as the Go original did). The agent logs
    /// them at every load; `hawkeye check` prints them.
    pub warnings: Vec<String>,
}

impl Default for MonitorsFile {
    fn default() -> Self {
        MonitorsFile {
            version: 1,
            monitors: Vec::new(),
            warnings: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Monitor {
    /// Names the monitor for silences (`--monitor ID`) and, when given,
    /// identifies its alert states instead of what it measures.
    pub id: Option<String>,
    pub metric: String,
    pub kind: MetricKind,
    /// Check period.
    pub interval: Duration,
    /// The window read at each check (whole seconds; defaults to `interval`).
    pub window: Duration,
    pub aggregation: Aggregation,
    /// Series filter; empty: every series of the name, summed.
    pub tags: TagFilter,
    /// Evaluate once per distinct combination of these tags' values, with
    /// a state per group; empty: one evaluation of all series.
    pub group_by: Vec<String>,
    /// The most groups evaluated; more are left out (logged, counted).
    pub max_groups: usize,
    /// A group without data for this long is resolved and forgotten.
    pub group_stale_after: Duration,
    /// value = metric / ratio_of over the same window.
    pub ratio_of: Option<String>,
    /// With `ratio_of`: the ratio × 100.
    pub percent: bool,
    pub notifier: Notifier,
    /// Subject template for every trigger without its own.
    pub subject: Option<String>,
    /// A gauge read with `last` keeps its latest value this long when the
    /// window has none (capped by the retention).
    pub gauge_stale_after: Duration,
    /// When a higher level fires, lower levels mail nobody it mails.
    pub inhibit_lower: bool,
    pub runbook: Option<String>,
    pub annotations: BTreeMap<String, String>,
    /// Recurring times when the monitor's triggers mail nobody.
    pub maintenance: Vec<MaintenanceWindow>,
    /// A service-level objective: `metric` counts bad events, `ratio_of`
    /// all events, and the triggers are burn-rate triggers.
    pub slo: Option<Slo>,
    pub triggers: Vec<Trigger>,
}

impl Monitor {
    /// The window in whole seconds (at least 1), as the store reads it.
    pub fn window_secs(&self) -> u64 {
        (self.window.as_millis().div_ceil(1000) as u64).max(1)
    }

    /// A monitor with the defaults of the file format, for code that
    /// builds monitors (tests, embedders).
    pub fn new(metric: &str, kind: MetricKind, triggers: Vec<Trigger>) -> Monitor {
        Monitor {
            id: None,
            metric: metric.to_string(),
            kind,
            interval: DEFAULT_INTERVAL,
            window: DEFAULT_INTERVAL,
            aggregation: Aggregation::default_for(kind),
            tags: TagFilter::default(),
            group_by: Vec::new(),
            max_groups: DEFAULT_MAX_GROUPS,
            group_stale_after: DEFAULT_GROUP_STALE_AFTER,
            ratio_of: None,
            percent: false,
            notifier: Notifier::Email,
            subject: None,
            gauge_stale_after: DEFAULT_GAUGE_STALE_AFTER,
            inhibit_lower: true,
            runbook: None,
            annotations: BTreeMap::new(),
            maintenance: Vec::new(),
            slo: None,
            triggers,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Trigger {
    /// Identifies the trigger's state instead of its position.
    pub id: Option<String>,
    pub threshold: f64,
    pub op: Op,
    /// Consecutive breaching checks before firing.
    pub for_checks: u32,
    /// Least time between repeated emails while firing.
    pub run_every: Duration,
    /// Once firing, stays firing until the condition has been false this
    /// long (Prometheus' `keep_firing_for`).
    pub keep_firing_for: Duration,
    /// Once firing, resolves only when the value is past this instead of
    /// the threshold (hysteresis, Datadog's recovery threshold).
    pub recovery_threshold: Option<f64>,
    pub text: Option<String>,
    pub subject: Option<String>,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub bcc: Vec<String>,
    /// URLs posted to, beside or instead of mail (`docs/alerts.md`,
    /// "Webhooks").
    pub webhooks: Vec<String>,
    pub webhook_format: WebhookFormat,
    pub send_resolved: bool,
    /// What a window with no data means; `None`: not written in the file
    /// (`ok`, except for counters, whose empty window is 0).
    pub missing: Option<Missing>,
    pub runbook: Option<String>,
    pub annotations: BTreeMap<String, String>,
    /// A burn-rate trigger of an SLO monitor: `threshold` is its rate and
    /// `op` is `>=`; it breaches when both windows burn at or over it.
    pub burn: Option<BurnWindows>,
}

impl Trigger {
    /// A trigger with the defaults of the file format.
    pub fn new(threshold: f64, to: &[&str]) -> Trigger {
        Trigger {
            id: None,
            threshold,
            op: Op::Ge,
            for_checks: 1,
            run_every: DEFAULT_RUN_EVERY,
            keep_firing_for: Duration::ZERO,
            recovery_threshold: None,
            text: None,
            subject: None,
            to: to.iter().map(|s| s.to_string()).collect(),
            cc: Vec::new(),
            bcc: Vec::new(),
            webhooks: Vec::new(),
            webhook_format: WebhookFormat::Json,
            send_resolved: false,
            missing: None,
            runbook: None,
            annotations: BTreeMap::new(),
            burn: None,
        }
    }

    /// A burn-rate trigger: fires when the error budget burns at `rate` or
    /// more over both windows.
    pub fn burn_rate(rate: f64, long: Duration, short: Duration, to: &[&str]) -> Trigger {
        Trigger {
            burn: Some(BurnWindows { long, short }),
            ..Trigger::new(rate, to)
        }
    }

    /// Every recipient (to, cc, bcc, and the webhooks).
    pub fn recipients(&self) -> impl Iterator<Item = &String> {
        self.to
            .iter()
            .chain(&self.cc)
            .chain(&self.bcc)
            .chain(&self.webhooks)
    }
}

/// A monitor's service-level objective (`docs/monitors.md`, "SLO monitors").
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Slo {
    /// The share of good events promised, in percent, in (0, 100).
    pub objective: f64,
    /// The time the objective is measured over (and the budget spent over).
    pub period: Duration,
}

impl Slo {
    /// The error budget: the share of events that may be bad (0.001 for 99.9).
    pub fn budget(&self) -> f64 {
        (100.0 - self.objective) / 100.0
    }
}

/// The two windows of a burn-rate trigger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BurnWindows {
    pub long: Duration,
    pub short: Duration,
}

/// How far back the store answers: per-second data for `HAWKEYE_RETENTION`
/// (what `interval` is capped by) and per-minute rollups for
/// `HAWKEYE_ROLLUP_RETENTION` (what windows and SLO periods are capped by).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub per_second: Duration,
    pub rollup: Duration,
}

impl Retention {
    /// The longest window a monitor may read.
    pub fn longest_window(&self) -> Duration {
        self.rollup.max(self.per_second)
    }
}

/// One retention for both tiers: the limits before rollups existed.
impl From<Duration> for Retention {
    fn from(d: Duration) -> Retention {
        Retention {
            per_second: d,
            rollup: d,
        }
    }
}

/// Comparison of the value with the threshold that counts as a breach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Op {
    #[default]
    Ge,
    Gt,
    Lt,
    Le,
}

impl Op {
    pub fn symbol(self) -> &'static str {
        match self {
            Op::Ge => ">=",
            Op::Gt => ">",
            Op::Lt => "<",
            Op::Le => "<=",
        }
    }

    /// Whether `value` breaches `threshold`.
    pub fn breaches(self, value: f64, threshold: f64) -> bool {
        match self {
            Op::Ge => value >= threshold,
            Op::Gt => value > threshold,
            Op::Lt => value < threshold,
            Op::Le => value <= threshold,
        }
    }

    /// Whether a breach is a value going up (`>=`, `>`).
    pub fn is_upward(self) -> bool {
        matches!(self, Op::Ge | Op::Gt)
    }
}

impl FromStr for Op {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            ">=" => Ok(Op::Ge),
            ">" => Ok(Op::Gt),
            "<" => Ok(Op::Lt),
            "<=" => Ok(Op::Le),
            other => Err(format!("unknown op {other:?} (expected >=, >, < or <=)")),
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.symbol())
    }
}

/// What a window with no data means for a trigger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// Not breaching (resolves a firing alert).
    Ok,
    /// Breaching.
    Breach,
    /// As if the check had not happened: the state stays as it is.
    Keep,
}

impl FromStr for Missing {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "ok" => Ok(Missing::Ok),
            "breach" => Ok(Missing::Breach),
            "keep" => Ok(Missing::Keep),
            other => Err(format!(
                "unknown missing {other:?} (expected ok, breach or keep)"
            )),
        }
    }
}

/// The body posted to a trigger's webhooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WebhookFormat {
    /// hawkeye's own JSON (`docs/alerts.md`, "Webhooks").
    #[default]
    Json,
    /// Slack's incoming-webhook body, `{"text": ...}`.
    Slack,
}

impl std::str::FromStr for WebhookFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "json" => Ok(WebhookFormat::Json),
            "slack" => Ok(WebhookFormat::Slack),
            other => Err(format!(
                "unknown webhook_format {other:?} (expected json or slack)"
            )),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Notifier {
    #[default]
    Email,
    /// Alerts go to the agent's log only.
    Log,
}

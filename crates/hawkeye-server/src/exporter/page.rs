//! The `/metrics` page: the server's own counters (`hawkeye_*`), then every
//! series, in the Prometheus text format (docs/protocol.md, "Prometheus").
//!
//! Names: a series' name with every character other than `[A-Za-z0-9_]`
//! made `_`; counters get `_total`. Tags become labels (names made valid
//! likewise, `quantile` written `tag_quantile`); a key given several values
//! (`#team:a,team:b`) is one label whose values are joined by `,` in sorted
//! order (`team="a,b"`); a tag without a value is `"true"`. Two series that
//! come out with the same name and labels, or a name used by families of
//! two types (a gauge `x_count` beside a summary `x`), cannot both be
//! shown: the first in name order is, the others are counted in
//! `hawkeye_metrics_conflicts`.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering::Relaxed;

use hawkeye_protocol::exposition::{self, Exposition, FamilyType};
use hawkeye_protocol::jsonrpc::StatsResult;
use hawkeye_protocol::SeriesKey;

use super::window;
use super::{buckets, Exporter, State, Tracked};

/// The quantiles of every summary.
const QUANTILES: [(f64, &str); 3] = [(0.5, "0.5"), (0.9, "0.9"), (0.99, "0.99")];

/// `server.stats` fields that are values now, not counts since the start.
const NOW_VALUES: [&str; 4] = ["connections", "buffered", "series", "pending_bytes"];

enum Values {
    One(f64),
    Summary {
        quantiles: [f64; 3],
        sum: f64,
        count: f64,
    },
}

struct Family {
    kind: FamilyType,
    help: String,
    /// By rendered label set.
    samples: BTreeMap<String, Values>,
}

#[derive(Default)]
struct Page {
    families: BTreeMap<String, Family>,
    conflicts: u64,
}

impl Page {
    /// Adds a sample, unless its family has another type or already has a
    /// sample with these labels (then it is counted as a conflict).
    fn add(
        &mut self,
        name: String,
        kind: FamilyType,
        help: impl FnOnce() -> String,
        labels: String,
        values: Values,
    ) {
        let family = self.families.entry(name).or_insert_with(|| Family {
            kind,
            help: help(),
            samples: BTreeMap::new(),
        });
        if family.kind != kind || family.samples.contains_key(&labels) {
            self.conflicts += 1;
            return;
        }
        family.samples.insert(labels, values);
    }

    /// A summary `x` also writes `x_sum` and `x_count`: families of those
    /// names would mix with it, so they go.
    fn remove_summary_clashes(&mut self) {
        let summaries: Vec<String> = self
            .families
            .iter()
            .filter(|(_, f)| f.kind == FamilyType::Summary)
            .map(|(name, _)| name.clone())
            .collect();
        for name in summaries {
            for suffix in ["_sum", "_count"] {
                if let Some(gone) = self.families.remove(&format!("{name}{suffix}")) {
                    self.conflicts += gone.samples.len() as u64;
                }
            }
        }
    }

    fn write(self) -> String {
        let mut out = Exposition::new();
        for (name, family) in &self.families {
            out.family(name, family.kind, &family.help);
            for (labels, values) in &family.samples {
                match values {
                    Values::One(v) => out.sample(name, labels, *v),
                    Values::Summary {
                        quantiles,
                        sum,
                        count,
                    } => {
                        for ((_, q), v) in QUANTILES.iter().zip(quantiles) {
                            out.sample_with(name, labels, ("quantile", q), *v);
                        }
                        out.sample(&format!("{name}_sum"), labels, *sum);
                        out.sample(&format!("{name}_count"), labels, *count);
                    }
                }
            }
        }
        out.finish()
    }
}

impl Exporter {
    /// The page, with `own` (the server's counters) first, at `now`.
    pub fn render(&self, own: &StatsResult, now: i64) -> String {
        let mut page = Page::default();
        own_counters(&mut page, own);
        let mut state = self.state();
        expire_windows(&mut state, now);
        page.add(
            "hawkeye_metrics_series".into(),
            FamilyType::Gauge,
            || "series shown on this page (at most HAWKEYE_MAX_SERIES)".into(),
            String::new(),
            Values::One(state.series.len() as f64),
        );
        let dropped = [
            (
                "hawkeye_metrics_series_dropped_total",
                "series not shown because HAWKEYE_MAX_SERIES were shown already",
                self.series_dropped.load(Relaxed),
            ),
            (
                "hawkeye_metrics_window_units_dropped_total",
                "sketch buckets and set members not kept for the 60 s windows (HAWKEYE_MAX_BUFFERED)",
                self.window_units_dropped.load(Relaxed),
            ),
        ];
        for (name, help, n) in dropped {
            let help = || help.to_string();
            page.add(
                name.into(),
                FamilyType::Counter,
                help,
                String::new(),
                Values::One(n as f64),
            );
        }
        // In key order: of two series that clash, the same one is shown
        // on every scrape.
        let mut series: Vec<_> = state.series.iter().collect();
        series.sort_unstable_by(|a, b| a.0.cmp(b.0));
        for (key, entry) in series {
            let (name, kind, values) = series_sample(key, &entry.tracked);
            let help = || format!("hawkeye {} {}", key.kind, key.name);
            page.add(name, kind, help, labels(key), values);
        }
        drop(state);
        page.remove_summary_clashes();
        let conflicts = page.conflicts as f64;
        page.add(
            "hawkeye_metrics_conflicts".into(),
            FamilyType::Gauge,
            || "series not shown on this page: their name and labels, once made valid, are another's".into(),
            String::new(),
            Values::One(conflicts),
        );
        page.write()
    }
}

/// `server.stats`, each field as `hawkeye_<field>` (`_total` for counts).
fn own_counters(page: &mut Page, own: &StatsResult) {
    let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(own) else {
        return;
    };
    for (field, value) in fields {
        let Some(v) = value.as_f64() else { continue };
        let (name, kind) = if NOW_VALUES.contains(&field.as_str()) {
            (format!("hawkeye_{field}"), FamilyType::Gauge)
        } else {
            (format!("hawkeye_{field}_total"), FamilyType::Counter)
        };
        let help = || format!("server.stats {field} (docs/protocol.md)");
        page.add(name, kind, help, String::new(), Values::One(v));
    }
}

fn expire_windows(state: &mut State, now: i64) {
    let units = &mut state.units;
    for entry in state.series.values_mut() {
        match &mut entry.tracked {
            Tracked::Distribution { window, .. } => {
                window.expire(now, |old| *units -= buckets(&old))
            }
            Tracked::Set(window) => window.expire(now, |old| *units -= old.len()),
            Tracked::Counter(_) | Tracked::Gauge(_) => {}
        }
    }
}

/// The family name, its type and the values of one series.
fn series_sample(key: &SeriesKey, tracked: &Tracked) -> (String, FamilyType, Values) {
    let name = exposition::metric_name(&key.name).into_owned();
    match tracked {
        Tracked::Counter(total) => (
            format!("{name}_total"),
            FamilyType::Counter,
            Values::One(*total),
        ),
        Tracked::Gauge(last) => (name, FamilyType::Gauge, Values::One(*last)),
        Tracked::Distribution { count, sum, window } => {
            let merged = window::merged(window);
            let quantiles = QUANTILES.map(|(q, _)| merged.quantile(q).unwrap_or(f64::NAN));
            let values = Values::Summary {
                quantiles,
                sum: *sum,
                count: *count,
            };
            (name, FamilyType::Summary, values)
        }
        Tracked::Set(window) => {
            let unique = window::unique(window) as f64;
            (name, FamilyType::Gauge, Values::One(unique))
        }
    }
}

/// The series' tags as a label set (see the module's comment).
fn labels(key: &SeriesKey) -> String {
    let mut labels: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in key.tag_pairs() {
        let mut name = exposition::label_name(k).into_owned();
        if name == "quantile" {
            name = "tag_quantile".into();
        }
        let v = if v.is_empty() { "true" } else { v };
        labels
            .entry(name)
            .and_modify(|values| {
                values.push(',');
                values.push_str(v);
            })
            .or_insert_with(|| v.to_string());
    }
    let mut out = String::new();
    exposition::write_labels(
        &mut out,
        labels.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    );
    out
}

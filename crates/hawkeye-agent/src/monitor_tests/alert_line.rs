//! An alert as `hawkeye test` names it in expectations and reports:
//! `<monitor>{<group>} level <n> <status>`.

use std::collections::BTreeMap;
use std::fmt;

/// An alert as tests name it: `<monitor>{<group>} level <n> <status>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AlertLine {
    /// The monitor's `id`, or its metric.
    pub monitor: String,
    /// The group's tags sorted by name (`group_by` monitors); empty otherwise.
    pub group: BTreeMap<String, String>,
    pub level: usize,
    /// `firing` or `resolved`.
    pub status: &'static str,
}

impl AlertLine {
    pub(super) fn firing(
        monitor: &str,
        group: BTreeMap<String, String>,
        level: usize,
    ) -> AlertLine {
        AlertLine {
            monitor: monitor.to_string(),
            group,
            level,
            status: "firing",
        }
    }

    pub(super) fn resolved(&self) -> AlertLine {
        AlertLine {
            status: "resolved",
            ..self.clone()
        }
    }
}

impl fmt::Display for AlertLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.monitor)?;
        if !self.group.is_empty() {
            let tags: Vec<String> = self.group.iter().map(|(k, v)| format!("{k}={v}")).collect();
            write!(f, "{{{}}}", tags.join(", "))?;
        }
        write!(f, " level {} {}", self.level, self.status)
    }
}

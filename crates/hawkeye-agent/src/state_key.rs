//! The store key of each trigger's state: an explicit, versioned format
//! (`docs/alerts.md`, "State keys"), pinned by a golden test.
//!
//! ```text
//! v2|<service>|<environment>|<monitor>|<trigger>
//!   monitor: id=<monitor id>
//!        or  m=<metric>|<type>|<aggregate>|<tag>=<value>,…|<ratio_of>[%]   (then ~2, ~3… for identical monitors)
//!   trigger: id=<trigger id>  or  #<level>
//! ```
//!
//! A trigger is identified by what its monitor measures (metric, type,
//! aggregation, tags, ratio) and its position, or by explicit ids — never
//! by its threshold, window, text or recipients: editing those keeps the
//! state and the next check evaluates the new rule. Each component is
//! escaped (`%`, `|`, `,`, `=` as `%XX`), so no two monitors share a key.
//!
//! [`legacy_keys`] rebuilds the keys agents wrote before this format (an
//! FNV hash of a `{:?}` rendering) so that their states can be migrated.

use std::collections::HashMap;

use crate::monitors::{Monitor, MonitorsFile};

/// The version written in front of every key.
pub const KEY_VERSION: &str = "v2";

/// Escapes the separators of the key format.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '%' => out.push_str("%25"),
            '|' => out.push_str("%7C"),
            ',' => out.push_str("%2C"),
            '=' => out.push_str("%3D"),
            c => out.push(c),
        }
    }
    out
}

/// What identifies a monitor: its id, or what it measures.
fn monitor_identity(m: &Monitor) -> String {
    if let Some(id) = &m.id {
        return format!("id={}", escape(id));
    }
    let tags: Vec<String> = m
        .tags
        .0
        .iter()
        .map(|(k, v)| format!("{}={}", escape(k), escape(v)))
        .collect();
    let ratio = match &m.ratio_of {
        Some(other) => format!("{}{}", escape(other), if m.percent { "%" } else { "" }),
        None => String::new(),
    };
    format!(
        "m={}|{}|{}|{}|{}",
        escape(&m.metric),
        m.kind.code(),
        m.aggregation,
        tags.join(","),
        ratio
    )
}

/// The state key of every trigger, per monitor.
pub fn state_keys(file: &MonitorsFile, service: &str, environment: &str) -> Vec<Vec<String>> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    file.monitors
        .iter()
        .map(|m| {
            let identity = monitor_identity(m);
            let n = seen.entry(identity.clone()).or_insert(0);
            *n += 1;
            let monitor = if *n > 1 {
                format!("{identity}~{n}")
            } else {
                identity
            };
            m.triggers
                .iter()
                .enumerate()
                .map(|(j, t)| {
                    let trigger = match &t.id {
                        Some(id) => format!("id={}", escape(id)),
                        None => format!("#{}", j + 1),
                    };
                    format!(
                        "{KEY_VERSION}|{}|{}|{monitor}|{trigger}",
                        escape(service),
                        escape(environment)
                    )
                })
                .collect()
        })
        .collect()
}

/// The key of a trigger's state for one group of a monitor with
/// `group_by`: the trigger's key ([`state_keys`]) and `|g=` with the
/// group's tags, `<tag>=<value>` joined by `,` in `group_by` order. Keys of
/// monitors without `group_by` have no such part, so they are unchanged.
pub fn group_key(trigger_key: &str, group: &[(String, String)]) -> String {
    let tags: Vec<String> = group
        .iter()
        .map(|(k, v)| format!("{}={}", escape(k), escape(v)))
        .collect();
    format!("{trigger_key}|g={}", tags.join(","))
}

/// The start of every state key of `service` in `environment`.
pub fn prefix(service: &str, environment: &str) -> String {
    format!("{KEY_VERSION}|{}|{}|", escape(service), escape(environment))
}

fn unescape(s: &str) -> String {
    s.replace("%2C", ",")
        .replace("%3D", "=")
        .replace("%7C", "|")
        .replace("%25", "%")
}

/// Which trigger of a file (and which group) a stored state key is.
pub struct KeyIndex {
    keys: HashMap<String, (usize, usize)>,
}

/// A located state key: the monitor's and trigger's indexes in the file,
/// and the group's `(tag, value)` pairs (empty without `group_by`).
pub type Located = (usize, usize, Vec<(String, String)>);

impl KeyIndex {
    pub fn new(file: &MonitorsFile, service: &str, environment: &str) -> KeyIndex {
        KeyIndex::of(state_keys(file, service, environment))
    }

    /// From the keys of every trigger, per monitor ([`state_keys`]).
    pub fn of(keys: Vec<Vec<String>>) -> KeyIndex {
        let mut index = HashMap::new();
        for (i, triggers) in keys.into_iter().enumerate() {
            for (j, key) in triggers.into_iter().enumerate() {
                index.insert(key, (i, j));
            }
        }
        KeyIndex { keys: index }
    }

    /// `None` for a key of no trigger of the file.
    pub fn locate(&self, key: &str) -> Option<Located> {
        if let Some(&(i, j)) = self.keys.get(key) {
            return Some((i, j, Vec::new()));
        }
        // The group part is last, and escaped: its `|g=` is the last one.
        let at = key.rfind("|g=")?;
        let &(i, j) = self.keys.get(&key[..at])?;
        let group = key[at + 3..]
            .split(',')
            .filter(|t| !t.is_empty())
            .filter_map(|t| t.split_once('='))
            .map(|(k, v)| (unescape(k), unescape(v)))
            .collect();
        Some((i, j, group))
    }
}

/// Every key a trigger's state may be under in a file: its own
/// ([`state_keys`]), and the keys it would have without the monitor's `id`,
/// without the trigger's `id`, and without either. Giving a monitor or a
/// trigger an `id`, renaming or removing one changes the key but keeps one
/// of these, so a reload can move the state to the new key (see
/// `engine::rename`) instead of resolving the alert and starting it again.
pub fn aliases(file: &MonitorsFile, service: &str, environment: &str) -> Vec<Vec<Vec<String>>> {
    let without = |monitor_ids: bool, trigger_ids: bool| {
        let mut f = file.clone();
        for m in &mut f.monitors {
            if monitor_ids {
                m.id = None;
            }
            for t in m.triggers.iter_mut().filter(|_| trigger_ids) {
                t.id = None;
            }
        }
        state_keys(&f, service, environment)
    };
    let forms = [
        state_keys(file, service, environment),
        without(true, false),
        without(false, true),
        without(true, true),
    ];
    forms[0]
        .iter()
        .enumerate()
        .map(|(i, triggers)| {
            (0..triggers.len())
                .map(|j| {
                    let mut keys: Vec<String> = Vec::with_capacity(forms.len());
                    for form in &forms {
                        if !keys.contains(&form[i][j]) {
                            keys.push(form[i][j].clone());
                        }
                    }
                    keys
                })
                .collect()
        })
        .collect()
}

/// FNV-1a: the same in every process and build (the legacy keys used it;
/// the outbox ids too).
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The keys agents wrote before [`KEY_VERSION`] (to migrate their states).
/// They hashed a `{:?}` rendering of the tags and ratio and included the
/// threshold; this reproduces them as the last such agent computed them.
pub fn legacy_keys(file: &MonitorsFile, service: &str, environment: &str) -> Vec<Vec<String>> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    file.monitors
        .iter()
        .map(|m| {
            m.triggers
                .iter()
                .map(|t| {
                    let identity = format!(
                        "{}\0{}\0{}\0{}\0{:?}\0{:?}\0{}\0{}\0{}\0{}\0{}\0{}",
                        service,
                        environment,
                        m.metric,
                        m.kind.code(),
                        m.tags.0,
                        m.ratio_of,
                        m.percent,
                        m.aggregation,
                        m.window_secs(),
                        m.interval.as_millis(),
                        t.op.symbol(),
                        t.threshold.to_bits(),
                    );
                    let n = seen.entry(identity.clone()).or_insert(0);
                    *n += 1;
                    let suffix = if *n > 1 {
                        format!("#{n}")
                    } else {
                        String::new()
                    };
                    format!(
                        "{service}:{environment}:{}:{:016x}{suffix}",
                        m.metric,
                        fnv1a(identity.as_bytes())
                    )
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::monitors::parse_monitors;

    const HOUR: Duration = Duration::from_secs(3600);

    const FILE: &str = "\
version: 1
monitors:
  - metric: http.response.5xx
    ratio_of: http.requests
    percent: true
    tags: {route: '/a=b%20', 'x=y': 1}
    interval: 30s
    triggers:
      - {threshold: 1, to: [a@example.com]}
      - {id: page, threshold: 5, to: [b@example.com]}
  - id: queue-depth
    metric: queue.depth
    type: g
    triggers:
      - {threshold: 1000, to: [a@example.com]}
  - metric: http.response.5xx
    ratio_of: http.requests
    percent: true
    tags: {route: '/a=b%20', 'x=y': 1}
    triggers:
      - {threshold: 2, to: [a@example.com]}
";

    /// The format is a contract with stored data: changing this test means
    /// every stored state is orphaned unless a migration is written.
    #[test]
    fn golden_keys() {
        let file = parse_monitors(FILE, "t", HOUR).unwrap();
        assert_eq!(
            state_keys(&file, "shop|eu", "prod"),
            [
                vec![
                    "v2|shop%7Ceu|prod|m=http.response.5xx|c|sum|route=/a%3Db%2520,x%3Dy=1|http.requests%|#1",
                    "v2|shop%7Ceu|prod|m=http.response.5xx|c|sum|route=/a%3Db%2520,x%3Dy=1|http.requests%|id=page",
                ],
                vec!["v2|shop%7Ceu|prod|id=queue-depth|#1"],
                vec!["v2|shop%7Ceu|prod|m=http.response.5xx|c|sum|route=/a%3Db%2520,x%3Dy=1|http.requests%~2|#1"],
            ]
        );
    }

    /// Pinned as [`golden_keys`]: stored states of groups depend on it.
    #[test]
    fn golden_group_keys() {
        let group = [
            ("route".to_string(), "/a,b".to_string()),
            ("code".to_string(), "5=x".to_string()),
        ];
        assert_eq!(
            group_key("v2|shop|prod|id=errors|#1", &group),
            "v2|shop|prod|id=errors|#1|g=route=/a%2Cb,code=5%3Dx"
        );
        assert_eq!(group_key("v2|s|e|id=x|#1", &[]), "v2|s|e|id=x|#1|g=");
    }

    #[test]
    fn stored_keys_are_located_in_the_file() {
        let file = parse_monitors(FILE, "t", HOUR).unwrap();
        let index = KeyIndex::new(&file, "shop|eu", "prod");
        let keys = state_keys(&file, "shop|eu", "prod");
        assert_eq!(index.locate(&keys[0][1]), Some((0, 1, vec![])));
        let group = vec![("route".to_string(), "/a,b=c|d%".to_string())];
        assert_eq!(
            index.locate(&group_key(&keys[2][0], &group)),
            Some((2, 0, group))
        );
        assert_eq!(index.locate("v2|shop%7Ceu|prod|id=gone|#1"), None);
        assert!(keys[0][0].starts_with(&prefix("shop|eu", "prod")));
    }

    #[test]
    fn thresholds_texts_recipients_and_windows_keep_the_key() {
        let file = parse_monitors(FILE, "t", HOUR).unwrap();
        let mut edited = file.clone();
        let m = &mut edited.monitors[0];
        m.window = Duration::from_secs(600);
        m.triggers[0].threshold = 50.0;
        m.triggers[0].to = vec!["other@example.com".into()];
        m.triggers[0].text = Some("new".into());
        assert_eq!(state_keys(&file, "s", "e"), state_keys(&edited, "s", "e"));
        edited.monitors[0].aggregation = hawkeye_store::Aggregation::Rate;
        assert_ne!(state_keys(&file, "s", "e"), state_keys(&edited, "s", "e"));
    }

    #[test]
    fn aliases_are_the_keys_without_ids() {
        let file = parse_monitors(FILE, "t", HOUR).unwrap();
        let aliases = aliases(&file, "s", "e");
        let measured = "v2|s|e|m=http.response.5xx|c|sum|route=/a%3Db%2520,x%3Dy=1|http.requests%";
        assert_eq!(aliases[0][0], [format!("{measured}|#1")]);
        assert_eq!(
            aliases[0][1],
            [format!("{measured}|id=page"), format!("{measured}|#2")]
        );
        assert_eq!(
            aliases[1][0],
            [
                "v2|s|e|id=queue-depth|#1".to_string(),
                "v2|s|e|m=queue.depth|g|last|||#1".to_string()
            ]
        );
    }

    #[test]
    fn legacy_keys_are_the_old_fnv_keys() {
        // Pinned from the agent before versioned keys, for the same monitor.
        let file = parse_monitors(
            "version: 1\nmonitors:\n  - metric: http.response.400\n    interval: 10s\n    triggers:\n      - {threshold: 3, to: [a@example.com]}\n",
            "t",
            HOUR,
        )
        .unwrap();
        let keys = legacy_keys(&file, "shop", "test");
        assert_eq!(keys[0][0], "shop:test:http.response.400:0a9c9d3f4d6ad5a3");
    }
}

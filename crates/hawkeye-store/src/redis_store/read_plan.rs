//! What a window query reads, resolved from its name's index members: the
//! kind, the aggregation, and the matching series. A plan refers to the
//! members it was made from (no copy of their tags), and carries the start
//! of its keys, so that the index cache keeps it beside the members for the
//! next read of the same query (`index_cache.rs`) and a steady read neither
//! matches the members nor formats key heads again. docs/storage.md
//! ("Reads", "The index cache").

use std::sync::Arc;

use hawkeye_protocol::{MetricKind, TagFilter};

use super::keys::{IndexMember, Keys, Slot};
use crate::staleness;
use crate::window::{self, Aggregation, WindowQuery};

/// The members of a name's indexes: `(shard, "<kind>|<tags>")`.
pub(crate) type Members = Arc<Vec<(u32, String)>>;

/// One series of a query, in one shard. A series found in several shards
/// (after `HAWKEYE_SHARDS_PER_NAME` changed) has one entry per shard, all
/// with the same `id`, side by side.
#[derive(Clone, Copy)]
pub(crate) struct SeriesRef {
    /// Its index member (in the plan's members).
    member: u32,
    /// Where the tags start in the member.
    tags_at: u32,
    /// Which of the plan's key heads its keys start with.
    head: u32,
    pub(crate) shard: u32,
    pub(crate) id: usize,
    /// Other entries share this series: merge its seconds, do not overwrite.
    pub(crate) split: bool,
}

/// What the first round trip of a query found: the series to read.
pub(crate) struct Plan {
    pub(crate) kind: MetricKind,
    pub(crate) aggregation: window::Aggregation,
    members: Members,
    /// `P:{slot}:<kind>:` of each shard the series sit in (shared by the
    /// plans of a grouped read's groups).
    heads: Arc<[String]>,
    pub(crate) series: Vec<SeriesRef>,
}

/// A query's plan: `None` when no series matches; an error when the query
/// cannot be answered (ambiguous kind, wrong aggregation).
pub(crate) type Planned = Result<Option<Arc<Plan>>, window::QueryError>;

impl Plan {
    /// The first second read: the window's, or earlier for a gauge that
    /// keeps its last value (see [`staleness`]).
    pub(crate) fn start(&self, q: &WindowQuery) -> i64 {
        staleness::read_start(q, self.kind, self.aggregation)
    }

    /// The canonical tags of a series.
    pub(crate) fn tags(&self, s: &SeriesRef) -> &str {
        &self.members[s.member as usize].1[s.tags_at as usize..]
    }

    /// The index member of a series (`<kind>|<tags>`).
    pub(crate) fn member(&self, s: &SeriesRef) -> &str {
        &self.members[s.member as usize].1
    }

    /// `P:{slot}:<kind>:`, the start of every key of the series.
    pub(crate) fn head(&self, s: &SeriesRef) -> &str {
        &self.heads[s.head as usize]
    }

    /// The same plan over some of its series (a group of a grouped read).
    pub(crate) fn with_series(&self, series: Vec<SeriesRef>) -> Plan {
        Plan {
            kind: self.kind,
            aggregation: self.aggregation,
            members: Arc::clone(&self.members),
            heads: Arc::clone(&self.heads),
            series,
        }
    }
}

/// What a plan depends on besides the members: a cached plan serves every
/// later query with the same key (only the window moves).
#[derive(Clone, PartialEq)]
pub(crate) struct PlanKey {
    kind: Option<MetricKind>,
    aggregation: Option<Aggregation>,
    tags: TagFilter,
}

impl PlanKey {
    pub(crate) fn of(q: &WindowQuery) -> PlanKey {
        PlanKey {
            kind: q.kind,
            aggregation: q.aggregation,
            tags: q.tags.clone(),
        }
    }

    /// Whether `q` would be planned as this key's query was. Asked for
    /// every query of every read: two empty filters (most monitors') are
    /// told equal without walking the maps.
    pub(crate) fn fits(&self, q: &WindowQuery) -> bool {
        let (mine, theirs) = (&self.tags.0, &q.tags.0);
        self.kind == q.kind
            && self.aggregation == q.aggregation
            && mine.len() == theirs.len()
            && (mine.is_empty() || mine == theirs)
    }
}

/// What query `q` reads, out of its name's index `members`.
pub(crate) fn plan_one(keys: &Keys, q: &WindowQuery, members: &Members) -> Planned {
    // Walked twice rather than collected: most queries match one series.
    let matching = || {
        members.iter().enumerate().filter_map(|(i, (shard, m))| {
            let (kind, tags) = IndexMember::decode(m)?;
            let wanted = q.kind.is_none_or(|k| k == kind) && q.tags.matches(tags);
            wanted.then(|| (kind, tags, *shard, i, m.len() - tags.len()))
        })
    };
    let Some(kind) = window::resolve_kind(q, matching().map(|(k, ..)| k))? else {
        return Ok(None);
    };
    let aggregation = window::aggregation_for(q, kind)?;
    let mut series: Vec<(&str, u32, usize, usize)> = matching()
        .filter(|(k, ..)| *k == kind)
        .map(|(_, tags, shard, i, at)| (tags, shard, i, at))
        .collect();
    if members.iter().any(|(shard, _)| *shard != 0) {
        // The same series may sit in two shards: put its entries side by side.
        series.sort_unstable();
    }
    let mut heads: Vec<(u32, String)> = Vec::new();
    let mut refs: Vec<SeriesRef> = Vec::with_capacity(series.len());
    for (i, &(tags, shard, member, tags_at)) in series.iter().enumerate() {
        let same_as_previous = i > 0 && series[i - 1].0 == tags;
        let split = same_as_previous || series.get(i + 1).is_some_and(|next| next.0 == tags);
        let id = match refs.last() {
            Some(last) if same_as_previous => last.id,
            _ => i,
        };
        let head = match heads.iter().position(|(s, _)| *s == shard) {
            Some(h) => h,
            None => {
                let mut head = String::new();
                keys.series_head_into(&mut head, Slot::new(&q.name, shard), kind);
                heads.push((shard, head));
                heads.len() - 1
            }
        };
        refs.push(SeriesRef {
            member: member as u32,
            tags_at: tags_at as u32,
            head: head as u32,
            shard,
            id,
            split,
        });
    }
    Ok(Some(Arc::new(Plan {
        kind,
        aggregation,
        members: Arc::clone(members),
        heads: heads.into_iter().map(|(_, h)| h).collect::<Vec<_>>().into(),
        series: refs,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(list: &[(u32, &str)]) -> Members {
        Arc::new(list.iter().map(|(s, m)| (*s, m.to_string())).collect())
    }

    #[test]
    fn a_plan_refers_to_its_members_and_keys() {
        let keys = Keys::new("hk");
        let m = members(&[
            (0, "c|host:a"),
            (1, "c|host:b"),
            (0, "ms|host:c"),
            (1, "c|host:a"),
        ]);
        let mut q = WindowQuery::new("n", 1, 100);
        q.kind = Some(MetricKind::Counter);
        let plan = plan_one(&keys, &q, &m).unwrap().unwrap();
        let got: Vec<_> = plan
            .series
            .iter()
            .map(|s| (plan.tags(s), plan.head(s), s.shard, s.id, s.split))
            .collect();
        assert_eq!(
            got,
            [
                ("host:a", "hk:{n}:c:", 0, 0, true),
                ("host:a", "hk:{n#1}:c:", 1, 0, true),
                ("host:b", "hk:{n#1}:c:", 1, 2, false),
            ]
        );
        assert_eq!(plan.member(&plan.series[2]), "c|host:b");
        // The distribution's member has a two-letter code.
        let mut d = WindowQuery::new("n", 1, 100);
        d.kind = Some(MetricKind::Distribution);
        let plan = plan_one(&keys, &d, &m).unwrap().unwrap();
        assert_eq!(plan.tags(&plan.series[0]), "host:c");
        // Both kinds without a `type`: ambiguous.
        assert!(plan_one(&keys, &WindowQuery::new("n", 1, 100), &m).is_err());
        assert!(PlanKey::of(&q).fits(&q));
        assert!(!PlanKey::of(&q).fits(&d));
        let mut later = q.clone();
        later.end += 60;
        assert!(PlanKey::of(&q).fits(&later), "only the window moved");
        let mut tagged = q.clone();
        tagged.tags.0.insert("host".into(), "a".into());
        let mut other = q.clone();
        other.tags.0.insert("host".into(), "b".into());
        assert!(!PlanKey::of(&q).fits(&tagged), "no filter is not a filter");
        assert!(!PlanKey::of(&tagged).fits(&q));
        assert!(!PlanKey::of(&tagged).fits(&other), "same tag, other value");
        assert!(PlanKey::of(&tagged).fits(&tagged.clone()));
    }
}

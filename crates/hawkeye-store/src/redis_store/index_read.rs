//! Round trip 1 of a read: the series of each queried name, from the index
//! cache (`index_cache.rs`) where it holds them, from the names' indexes
//! otherwise; and the writers' record of changed indexes, which says which
//! cached ones are out of date. docs/storage.md ("Reads", "The index cache").

use std::sync::Arc;
use std::time::Instant;

use redis::Value;

use super::config::MAX_SHARDS_PER_NAME;
use super::connection::Group;
use super::index_cache::{Changed, Changes, IndexCache, NameMap, CHANGES_PER_READ};
use super::keys::Slot;
use super::read_plan::{plan_one, Members, Planned};
use super::reply::as_str;
use super::RedisStore;
use crate::error::StoreError;
use crate::staleness;
use crate::tiers::wall_secs;
use crate::window::WindowQuery;

/// The members of some names' indexes, as read.
type Found<'a> = NameMap<&'a str, Vec<(u32, String)>>;

/// Notes that `q`'s name is read from `q`'s candidates on (or earlier).
fn need<'a>(needed: &mut NameMap<&'a str, i64>, q: &'a WindowQuery) {
    let start = staleness::candidates_start(q);
    needed
        .entry(q.name.as_str())
        .and_modify(|n| *n = (*n).min(start))
        .or_insert(start);
}

impl RedisStore {
    /// Round trip 1: the plan of each query, from the index cache where it
    /// holds the name (the plan kept there), from the name's indexes
    /// otherwise.
    pub(super) async fn plan(&self, queries: &[WindowQuery]) -> Result<Vec<Planned>, StoreError> {
        let now = Instant::now();
        let cache = &self.index_cache;
        let mut planned: Vec<Option<Planned>> = Vec::with_capacity(queries.len());
        planned.resize_with(queries.len(), || None);
        // The earliest second the queries of each name not held need.
        let mut needed: NameMap<&str, i64> = NameMap::default();
        let needs = queries
            .iter()
            .enumerate()
            .map(|(i, q)| (i, q, staleness::candidates_start(q)));
        cache.plans(
            &self.keys,
            needs,
            now,
            |i, plan| planned[i] = Some(plan),
            |i| need(&mut needed, &queries[i]),
        );
        let now_secs = wall_secs();
        let lower = |need: i64| match cache.enabled() {
            true => IndexCache::lower_bound(need, now_secs),
            false => need,
        };
        let missing: Vec<(&str, i64)> = needed.iter().map(|(n, need)| (*n, lower(*need))).collect();
        let stream = cache.enabled().then(|| cache.stream_position());
        let (fresh, changes) = self.read_names(&missing, stream.as_ref()).await?;
        let changed = match (&stream, changes) {
            (Some(position), Some(reply)) => {
                cache.apply(parse_changes(&reply, position.is_some())?)
            }
            _ => Changed::none(),
        };
        // Plans over members the stream says are out of date are made
        // again, from the members read beside the stream or read again.
        let mut again: NameMap<&str, i64> = NameMap::default();
        if !changed.is_empty() {
            for (q, plan) in queries.iter().zip(&mut planned) {
                if plan.is_some() && changed.contains(&q.name) {
                    *plan = None;
                    if !fresh.contains_key(q.name.as_str()) {
                        need(&mut again, q);
                    }
                }
            }
        }
        let again: NameMap<&str, i64> = again
            .into_iter()
            .map(|(n, need)| (n, lower(need)))
            .collect();
        let again_list: Vec<(&str, i64)> = again.iter().map(|(n, l)| (*n, *l)).collect();
        let (refreshed, _) = self.read_names(&again_list, None).await?;
        let mut members: NameMap<&str, Members> = NameMap::default();
        for (name, list) in fresh {
            let list = Arc::new(list);
            // A name read beside the stream and listed in it may have been
            // read before its change (on a cluster the two run side by side).
            if !changed.contains(name) {
                cache.put(name, lower(needed[name]), Arc::clone(&list), now);
            }
            members.insert(name, list);
        }
        for (name, list) in refreshed {
            let list = Arc::new(list);
            cache.put(name, again[name], Arc::clone(&list), now);
            members.insert(name, list);
        }
        let none: Members = Members::default();
        Ok(queries
            .iter()
            .zip(planned)
            .map(|(q, plan)| {
                plan.unwrap_or_else(|| {
                    let list = members.get(q.name.as_str()).unwrap_or(&none);
                    plan_one(&self.keys, q, list)
                })
            })
            .collect())
    }

    /// Reads the indexes of `names` (each from its bound on), in every shard
    /// this store writes and any more a writer recorded (one more round
    /// trip, only then). With `stream`, reads the change stream first, in
    /// the same round trip, and returns its reply.
    async fn read_names<'a>(
        &self,
        names: &[(&'a str, i64)],
        stream: Option<&Option<String>>,
    ) -> Result<(Found<'a>, Option<Value>), StoreError> {
        let mut found: Found<'a> = names.iter().map(|(n, _)| (*n, Vec::new())).collect();
        let wanted: Vec<(&str, i64, u32)> = names
            .iter()
            .flat_map(|&(name, lower)| (0..self.shards).map(move |s| (name, lower, s)))
            .collect();
        let mut groups = Vec::with_capacity(wanted.len() + 1);
        if let Some(position) = stream {
            groups.push(self.changes_read(position.as_deref()));
        }
        groups.extend(wanted.iter().map(|w| self.index_group(*w)));
        if groups.is_empty() {
            return Ok((found, None));
        }
        let mut replies = self.conn.run(groups).await?.into_iter();
        let changes = match stream {
            Some(_) => replies.next().and_then(|mut r| r.pop()),
            None => None,
        };
        let mut more = Vec::new();
        for ((name, lower, shard), reply) in wanted.iter().zip(replies) {
            if *shard == 0 {
                // Shard 0 also answered with the recorded shard count.
                let recorded = reply
                    .get(1)
                    .and_then(as_str)
                    .and_then(|s| s.parse::<u32>().ok())
                    .unwrap_or(1)
                    .min(MAX_SHARDS_PER_NAME);
                more.extend((self.shards..recorded).map(|s| (*name, *lower, s)));
            }
            add_members(&mut found, name, *shard, &reply);
        }
        if !more.is_empty() {
            let groups = more.iter().map(|w| self.index_group(*w)).collect();
            let replies = self.conn.run(groups).await?;
            for ((name, _, shard), reply) in more.iter().zip(&replies) {
                add_members(&mut found, name, *shard, reply);
            }
        }
        Ok((found, changes))
    }

    /// The index of one shard of a name from `lower` on (and, for shard 0,
    /// the recorded shard count).
    fn index_group(&self, (name, lower, shard): (&str, i64, u32)) -> Group {
        let mut g = Group::default();
        g.cmd("ZRANGEBYSCORE")
            .arg(self.keys.index(Slot::new(name, shard)))
            .arg(lower)
            .arg("+inf");
        if shard == 0 {
            g.cmd("GET").arg(self.keys.shards(name));
        }
        g
    }

    /// The change stream's entries after `position`, or its newest entry.
    fn changes_read(&self, position: Option<&str>) -> Group {
        let mut g = Group::default();
        let key = self.keys.index_changes();
        match position {
            Some(id) => g
                .cmd("XRANGE")
                .arg(key)
                .arg(format!("({id}"))
                .arg("+")
                .arg("COUNT")
                .arg(CHANGES_PER_READ + 1),
            None => g
                .cmd("XREVRANGE")
                .arg(key)
                .arg("+")
                .arg("-")
                .arg("COUNT")
                .arg(1),
        };
        g
    }
}

fn add_members<'a>(found: &mut Found<'a>, name: &'a str, shard: u32, reply: &[Value]) {
    if let Some(Value::Array(items) | Value::Set(items)) = reply.first() {
        let members = items.iter().filter_map(as_str);
        let list = found.entry(name).or_default();
        list.extend(members.map(|m| (shard, m.to_string())));
    }
}

fn items(v: &Value) -> Option<&[Value]> {
    match v {
        Value::Array(items) => Some(items),
        _ => None,
    }
}

/// What an `XRANGE` (after a known entry) or `XREVRANGE` (the newest
/// entry, `had_position` false) of the change stream says. Entries are
/// `[id, [field, name, ...]]`.
fn parse_changes(reply: &Value, had_position: bool) -> Result<Changes<'_>, StoreError> {
    let bad = || StoreError::Protocol(format!("the index change stream replied {reply:?}"));
    let entries = items(reply).ok_or_else(bad)?;
    let mut ids = Vec::with_capacity(entries.len());
    let mut names = Vec::new();
    for entry in entries {
        let [id, fields] = items(entry).ok_or_else(bad)? else {
            return Err(bad());
        };
        ids.push(as_str(id).ok_or_else(bad)?);
        let fields = items(fields).ok_or_else(bad)?;
        names.extend(fields.iter().skip(1).step_by(2).filter_map(as_str));
    }
    if !had_position {
        // Nothing recorded yet: every later entry is new.
        return Ok(Changes::All(Some(ids.first().copied().unwrap_or("0-0"))));
    }
    if entries.len() > CHANGES_PER_READ {
        return Ok(Changes::All(None));
    }
    Ok(Changes::Names(names, ids.last().copied()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    fn entry(id: &str, names: &[&str]) -> Value {
        let fields = names.iter().flat_map(|n| [bulk("n"), bulk(n)]).collect();
        Value::Array(vec![bulk(id), Value::Array(fields)])
    }

    #[test]
    fn change_entries_name_the_changed_indexes() {
        let reply = Value::Array(vec![entry("1-0", &["a", "b"]), entry("2-0", &["c"])]);
        let Ok(Changes::Names(names, id)) = parse_changes(&reply, true) else {
            panic!("names expected");
        };
        assert_eq!((names, id), (vec!["a", "b", "c"], Some("2-0")));
        let Ok(Changes::All(Some("2-0"))) =
            parse_changes(&Value::Array(vec![entry("2-0", &[])]), false)
        else {
            panic!("the first read learns the newest entry");
        };
        let Ok(Changes::All(Some("0-0"))) = parse_changes(&Value::Array(Vec::new()), false) else {
            panic!("an empty stream starts at 0-0");
        };
        let many = Value::Array(
            (0..=CHANGES_PER_READ)
                .map(|i| entry(&format!("{i}-0"), &["x"]))
                .collect(),
        );
        assert!(matches!(parse_changes(&many, true), Ok(Changes::All(None))));
        assert!(parse_changes(&Value::Int(3), true).is_err());
    }
}

//! The Redis store.
//!
//! # Key schema
//!
//! Every key of a metric name carries the name as its hash tag (`{name}`), so
//! all series of one name live in one cluster slot: a window read of a name is
//! one pipeline to one node, and the write script can touch the series' data
//! and the name's index atomically. `P` is `HAWKEYE_KEY_PREFIX`.
//!
//! | key | type | holds |
//! |---|---|---|
//! | `P:{name}:series` | sorted set | one member per series, `<kind>\|<tags>`, scored by the last second it has data |
//! | `P:{name}:<kind>:<minute>:<tags>` | hash | counter, gauge and distribution aggregates of one series for one minute (`minute` = unix seconds / 60), one group of fields per second |
//! | `P:{name}:s:<second>:<tags>` | HyperLogLog | the members of a set series in one second |
//! | `P:alert:{<trigger>}` | string | the agent's state of one trigger (JSON) |
//!
//! Fields of a minute hash, for second `S` (0–59) of the minute:
//! counter `S` (sum); gauge `S:l` (last) `S:lo` `S:hi` `S:s` (sum) `S:n`
//! (count); distribution `S:n` `S:s` `S:lo` `S:hi`, and sketch buckets `S:b<i>`
//! (positive values), `S:m<i>` (negative values), `S:z` (zero). The field
//! `_f:<server-id>` records the last flush of that server applied to the hash.
//!
//! # Writes
//!
//! One flush of one series-minute is one `EVALSHA` of [`WRITE_SCRIPT`]: it
//! returns at once if the hash already records this flush (a retry after a
//! half-failed pipeline), otherwise applies increments (`HINCRBYFLOAT`),
//! min/max (compare then set) and last values, refreshes expiries and indexes
//! the series. Everything is an increment, a min/max or an idempotent set, so
//! several servers can write the same series. Sets use `PFADD`, idempotent by
//! nature. Keys expire `HAWKEYE_RETENTION` after their last write, and series
//! idle longer than that leave the index.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use hawkeye_protocol::MetricKind;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, RedisError, Value};

use crate::aggregate::{Aggregate, GaugeStats};
use crate::window::{self, SeriesWindow, WindowQuery};
use crate::{QueryOutcome, Store, StoreError, WriteBatch};

/// Commands sent in one round trip at most. Bounds the memory a flush or a
/// query of many series needs (commands, packed request and replies), at the
/// cost of more round trips only for very large ones.
const MAX_COMMANDS_PER_ROUND_TRIP: usize = 10_000;

/// Applies one flush of one series-minute, once.
///
/// KEYS: data hash, index sorted set.
/// ARGV: ttl, server id, flush seq, index member, index score, then triples
/// of (op, field, value) with op `+` increment, `=` set, `<` keep min, `>` keep max.
pub const WRITE_SCRIPT: &str = r#"
local marker = '_f:' .. ARGV[2]
local seq = tonumber(ARGV[3])
local done = tonumber(redis.call('HGET', KEYS[1], marker) or '0')
if done >= seq then return 0 end
for i = 6, #ARGV, 3 do
  local op, field, value = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if op == '+' then
    redis.call('HINCRBYFLOAT', KEYS[1], field, value)
  elseif op == '=' then
    redis.call('HSET', KEYS[1], field, value)
  else
    local current = redis.call('HGET', KEYS[1], field)
    local v = tonumber(value)
    if not current or (op == '<' and v < tonumber(current)) or (op == '>' and v > tonumber(current)) then
      redis.call('HSET', KEYS[1], field, value)
    end
  end
end
redis.call('HSET', KEYS[1], marker, ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], 'GT', ARGV[5], ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', tonumber(ARGV[5]) - tonumber(ARGV[1]))
redis.call('EXPIRE', KEYS[2], ARGV[1])
return 1
"#;

/// Compare-and-swap of one alert state.
/// KEYS: state key. ARGV: `1` if a value is expected (else `0`), expected, new.
const SWAP_SCRIPT: &str = r#"
local current = redis.call('GET', KEYS[1])
if ARGV[1] == '0' then
  if current then return 0 end
elseif current ~= ARGV[2] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[3])
return 1
"#;

/// How to reach Redis and how to lay out keys.
#[derive(Clone)]
pub struct RedisConfig {
    /// `redis://`, `rediss://`, `redis+unix://`, or a comma list of cluster nodes.
    pub url: String,
    /// Prefix of every key (`HAWKEYE_KEY_PREFIX`).
    pub key_prefix: String,
    /// How long aggregates are kept (`HAWKEYE_RETENTION`).
    pub retention: Duration,
}

impl std::fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &redact_url(&self.url))
            .field("key_prefix", &self.key_prefix)
            .field("retention", &self.retention)
            .finish()
    }
}

/// The URL with any password replaced by `***`, for logs and errors.
pub use crate::redact::redact_url;

/// Commands for one hash tag (so one cluster slot), in order. On a single
/// node, [`RedisStore::run`] moves all groups into one pipeline.
#[derive(Default)]
struct Group(Vec<Cmd>);

impl Group {
    fn cmd(&mut self, name: &str) -> &mut Cmd {
        self.0.push(redis::cmd(name));
        let last = self.0.len() - 1;
        &mut self.0[last]
    }

    fn len(&self) -> usize {
        self.0.len()
    }
}

enum Connection {
    Single(ConnectionManager),
    Cluster {
        client: Box<ClusterClient>,
        conn: tokio::sync::Mutex<Option<ClusterConnection>>,
    },
}

pub struct RedisStore {
    conn: Connection,
    prefix: String,
    ttl_secs: u64,
    write_script: redis::Script,
    swap_script: redis::Script,
}

fn unavailable(e: RedisError) -> StoreError {
    // Redis errors do not carry the URL, so no secret can leak through them.
    StoreError::Unavailable(e.to_string())
}

impl RedisStore {
    /// Prepares a connection. It is made lazily: a Redis that is down now is
    /// not an error here; writes fail (and are retried by the caller) until
    /// it is up.
    pub async fn connect(config: RedisConfig) -> Result<RedisStore, StoreError> {
        let nodes: Vec<&str> = config
            .url
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        let bad_url = |e: RedisError| {
            StoreError::Config(format!("REDIS_URL {}: {e}", redact_url(&config.url)))
        };
        let conn = match nodes.as_slice() {
            [] => return Err(StoreError::Config("REDIS_URL is empty".into())),
            [one] => {
                let client = redis::Client::open(*one).map_err(bad_url)?;
                let manager_config = ConnectionManagerConfig::new()
                    .set_number_of_retries(1)
                    .set_connection_timeout(Some(Duration::from_secs(2)))
                    .set_response_timeout(Some(Duration::from_secs(30)));
                Connection::Single(
                    client
                        .get_connection_manager_lazy(manager_config)
                        .map_err(bad_url)?,
                )
            }
            many => Connection::Cluster {
                client: Box::new(ClusterClient::new(many.to_vec()).map_err(bad_url)?),
                conn: tokio::sync::Mutex::new(None),
            },
        };
        Ok(RedisStore {
            conn,
            prefix: config.key_prefix,
            ttl_secs: config.retention.as_secs().max(1),
            write_script: redis::Script::new(WRITE_SCRIPT),
            swap_script: redis::Script::new(SWAP_SCRIPT),
        })
    }

    fn is_cluster(&self) -> bool {
        matches!(self.conn, Connection::Cluster { .. })
    }

    async fn cluster_conn(&self) -> Result<ClusterConnection, StoreError> {
        let Connection::Cluster { client, conn } = &self.conn else {
            return Err(StoreError::Config("not a cluster connection".into()));
        };
        let mut guard = conn.lock().await;
        if let Some(c) = guard.as_ref() {
            return Ok(c.clone());
        }
        let c = client.get_async_connection().await.map_err(unavailable)?;
        *guard = Some(c.clone());
        Ok(c)
    }

    /// Runs pipelines and returns their replies in order, one reply per
    /// command: callers never mark commands ignored, because re-packing
    /// pipelines into one (below) would not carry the marks over.
    /// On one node they go
    /// as one pipeline; on a cluster each (all keys of one hash tag) goes on
    /// its own, concurrently, so that no pipeline spans slots.
    async fn run(&self, groups: Vec<Group>) -> Result<Vec<Vec<Value>>, StoreError> {
        match &self.conn {
            Connection::Single(manager) => {
                let mut all = redis::pipe();
                let mut sizes = Vec::with_capacity(groups.len());
                for group in groups {
                    sizes.push(group.0.len());
                    for cmd in group.0 {
                        all.add_command(cmd);
                    }
                }
                if all.is_empty() {
                    return Ok(sizes.iter().map(|_| Vec::new()).collect());
                }
                let mut conn = manager.clone();
                let replies: Vec<Value> = all.query_async(&mut conn).await.map_err(unavailable)?;
                // One pass over the replies: splitting the vector group by
                // group would copy the rest each time (quadratic at 10 000 queries).
                let mut replies = replies.into_iter();
                Ok(sizes
                    .into_iter()
                    .map(|n| replies.by_ref().take(n).collect())
                    .collect())
            }
            Connection::Cluster { .. } => {
                let conn = self.cluster_conn().await?;
                let futures = groups.into_iter().map(|group| {
                    let mut conn = conn.clone();
                    async move {
                        if group.0.is_empty() {
                            return Ok(Vec::new());
                        }
                        let mut pipe = redis::pipe();
                        for cmd in group.0 {
                            pipe.add_command(cmd);
                        }
                        pipe.query_async::<Vec<Value>>(&mut conn).await
                    }
                });
                let results = futures::future::join_all(futures).await;
                results
                    .into_iter()
                    .map(|r| r.map_err(unavailable))
                    .collect()
            }
        }
    }

    fn index_key(&self, name: &str) -> String {
        format!("{}:{{{}}}:series", self.prefix, name)
    }

    fn minute_key(&self, name: &str, kind: MetricKind, minute: i64, tags: &str) -> String {
        format!(
            "{}:{{{}}}:{}:{}:{}",
            self.prefix,
            name,
            kind.code(),
            minute,
            tags
        )
    }

    fn set_key(&self, name: &str, second: i64, tags: &str) -> String {
        format!("{}:{{{}}}:s:{}:{}", self.prefix, name, second, tags)
    }

    fn alert_key(&self, key: &str) -> String {
        format!("{}:alert:{{{}}}", self.prefix, key)
    }

    /// Sends the queued minute reads and folds their replies into windows.
    async fn read_chunk(
        &self,
        reads: &mut Reads,
        queries: &[WindowQuery],
        plans: &[Result<Option<Plan>, window::QueryError>],
    ) -> Result<(), StoreError> {
        if reads.jobs.is_empty() {
            return Ok(());
        }
        // One pipeline per query, so that on a cluster each stays in one slot.
        let mut pipes: Vec<Group> = Vec::new();
        let mut last_query = usize::MAX;
        for job in &reads.jobs {
            if job.query != last_query {
                pipes.push(Group::default());
                last_query = job.query;
            }
            if let Some(p) = pipes.last_mut() {
                match &job.fields {
                    Some(fields) => p.cmd("HMGET").arg(&job.key).arg(fields),
                    None => p.cmd("HGETALL").arg(&job.key),
                };
            }
        }
        let replies = self.run(pipes).await?;
        let jobs = std::mem::take(&mut reads.jobs);
        for (job, reply) in jobs.iter().zip(replies.iter().flatten()) {
            let (q, Ok(Some(plan))) = (&queries[job.query], &plans[job.query]) else {
                continue;
            };
            if reads.current != Some((job.query, job.series)) {
                reads.finish_series();
                reads.current = Some((job.query, job.series));
            }
            let pairs = match &job.fields {
                Some(fields) => named_pairs(fields, reply)?,
                None => hash_pairs(reply)?,
            };
            decode_minute(
                plan.kind,
                job.minute,
                &pairs,
                q.start(),
                q.end,
                &mut reads.seconds,
            )?;
        }
        Ok(())
    }

    /// The number of distinct members across HyperLogLog `keys` (all of one
    /// name, so one slot). Very many keys are merged in chunks first.
    async fn count_union(&self, name: &str, keys: Vec<String>) -> Result<f64, StoreError> {
        // The count is the first reply of the last pipeline (a DEL may follow it).
        let count = |replies: Vec<Vec<Value>>| match replies.last().and_then(|r| r.first()) {
            Some(Value::Int(n)) => Ok(*n as f64),
            other => Err(StoreError::Protocol(format!("PFCOUNT replied {other:?}"))),
        };
        if keys.len() <= MAX_COMMANDS_PER_ROUND_TRIP {
            let mut p = Group::default();
            p.cmd("PFCOUNT").arg(keys);
            return count(self.run(vec![p]).await?);
        }
        let scratch = format!("{}:{{{}}}:union:{}", self.prefix, name, rand_suffix());
        for chunk in keys.chunks(MAX_COMMANDS_PER_ROUND_TRIP) {
            let mut p = Group::default();
            p.cmd("PFMERGE").arg(&scratch).arg(chunk);
            p.cmd("EXPIRE").arg(&scratch).arg(60);
            self.run(vec![p]).await?;
        }
        let mut p = Group::default();
        p.cmd("PFCOUNT").arg(&scratch);
        p.cmd("DEL").arg(&scratch);
        count(self.run(vec![p]).await?)
    }

    /// Adds the script invocation for one series-minute to `pipe`.
    fn add_write(&self, pipe: &mut Group, keys: [String; 2], args: Vec<String>) {
        if self.is_cluster() {
            // No SCRIPT LOAD can be relied on per node: send the script itself.
            let cmd = pipe.cmd("EVAL").arg(WRITE_SCRIPT).arg(2);
            cmd.arg(&keys[0]).arg(&keys[1]).arg(args);
        } else {
            let cmd = pipe.cmd("EVALSHA").arg(self.write_script.get_hash()).arg(2);
            cmd.arg(&keys[0]).arg(&keys[1]).arg(args);
        }
    }
}

/// The (op, field, value) triples that write one second of an aggregate.
fn write_ops(second_in_minute: i64, agg: &Aggregate, args: &mut Vec<String>) {
    let s = second_in_minute;
    let mut op = |op: &str, field: String, value: f64| {
        args.push(op.to_string());
        args.push(field);
        args.push(value.to_string());
    };
    match agg {
        Aggregate::Counter(v) => op("+", s.to_string(), *v),
        Aggregate::Gauge(g) => {
            op("=", format!("{s}:l"), g.last);
            op("<", format!("{s}:lo"), g.min);
            op(">", format!("{s}:hi"), g.max);
            op("+", format!("{s}:s"), g.sum);
            op("+", format!("{s}:n"), g.count);
        }
        Aggregate::Distribution(d) => {
            op("+", format!("{s}:n"), d.count);
            op("+", format!("{s}:s"), d.sum);
            op("<", format!("{s}:lo"), d.min);
            op(">", format!("{s}:hi"), d.max);
            if d.sketch.zero > 0.0 {
                op("+", format!("{s}:z"), d.sketch.zero);
            }
            for (i, c) in &d.sketch.positive {
                op("+", format!("{s}:b{i}"), *c);
            }
            for (i, c) in &d.sketch.negative {
                op("+", format!("{s}:m{i}"), *c);
            }
        }
        Aggregate::Set(_) => {}
    }
}

/// Decodes a minute hash into per-second aggregates inside `[start, end]`.
fn decode_minute(
    kind: MetricKind,
    minute: i64,
    fields: &[(&str, &str)],
    start: i64,
    end: i64,
    out: &mut BTreeMap<i64, Aggregate>,
) -> Result<(), StoreError> {
    for &(field, value) in fields {
        if field.starts_with('_') {
            continue;
        }
        let (sec, sub) = field.split_once(':').unwrap_or((field, ""));
        let bad = || StoreError::Protocol(format!("unexpected field {field:?} = {value:?}"));
        let second = minute * 60 + sec.parse::<i64>().map_err(|_| bad())?;
        if second < start || second > end {
            continue;
        }
        let v: f64 = value.parse().map_err(|_| bad())?;
        match kind {
            MetricKind::Counter => {
                *out.entry(second).or_insert(Aggregate::Counter(0.0)) = Aggregate::Counter(v);
            }
            MetricKind::Gauge => {
                let entry = out
                    .entry(second)
                    .or_insert_with(|| Aggregate::Gauge(GaugeStats::new(f64::NAN)));
                let Aggregate::Gauge(g) = entry else {
                    return Err(bad());
                };
                match sub {
                    "l" => g.last = v,
                    "lo" => g.min = v,
                    "hi" => g.max = v,
                    "s" => g.sum = v,
                    "n" => g.count = v,
                    _ => return Err(bad()),
                }
            }
            MetricKind::Distribution => {
                let entry = out
                    .entry(second)
                    .or_insert_with(|| Aggregate::Distribution(Box::default()));
                let Aggregate::Distribution(d) = entry else {
                    return Err(bad());
                };
                match sub {
                    "n" => d.count = v,
                    "s" => d.sum = v,
                    "lo" => d.min = v,
                    "hi" => d.max = v,
                    "z" => d.sketch.zero = v,
                    b if b.starts_with('b') => {
                        d.sketch
                            .positive
                            .insert(b[1..].parse().map_err(|_| bad())?, v);
                    }
                    m if m.starts_with('m') => {
                        d.sketch
                            .negative
                            .insert(m[1..].parse().map_err(|_| bad())?, v);
                    }
                    _ => return Err(bad()),
                }
            }
            MetricKind::Set => return Err(bad()),
        }
    }
    Ok(())
}

/// A reply as owned text (index members, alert states).
fn as_string(v: &Value) -> Option<String> {
    as_str(v).map(str::to_owned)
}

/// A reply as text, borrowed (no allocation on the read path).
fn as_str(v: &Value) -> Option<&str> {
    match v {
        Value::BulkString(b) => std::str::from_utf8(b).ok(),
        Value::SimpleString(s) => Some(s),
        Value::VerbatimString { text, .. } => Some(text),
        _ => None,
    }
}

/// The field/value pairs of an `HGETALL` reply.
fn hash_pairs(v: &Value) -> Result<Vec<(&str, &str)>, StoreError> {
    let bad = || StoreError::Protocol(format!("expected a hash, got {v:?}"));
    match v {
        Value::Array(items) => items
            .chunks(2)
            .map(|c| match c {
                [k, v] => Some((as_str(k)?, as_str(v)?)),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()
            .ok_or_else(bad),
        Value::Map(items) => items
            .iter()
            .map(|(k, v)| Some((as_str(k)?, as_str(v)?)))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(bad),
        Value::Nil => Ok(Vec::new()),
        _ => Err(bad()),
    }
}

/// The field/value pairs of an `HMGET` reply, skipping absent fields.
fn named_pairs<'a>(
    fields: &'a [String],
    v: &'a Value,
) -> Result<Vec<(&'a str, &'a str)>, StoreError> {
    let Value::Array(values) = v else {
        return Err(StoreError::Protocol(format!(
            "expected an array, got {v:?}"
        )));
    };
    Ok(fields
        .iter()
        .zip(values)
        .filter_map(|(f, v)| Some((f.as_str(), as_str(v)?)))
        .collect())
}

/// Windows covering at most this many seconds of a minute read their fields by name.
const MAX_SECONDS_BY_NAME: i64 = 10;

/// The fields of a minute hash that hold the seconds `[start, end]`, when
/// they are known and few: counters and gauges have
/// fixed fields per second; a distribution's bucket fields are not known in
/// advance, so it is read whole (`None`).
fn fields_in_window(kind: MetricKind, minute: i64, start: i64, end: i64) -> Option<Vec<String>> {
    let first = start.max(minute * 60) - minute * 60;
    let last = end.min(minute * 60 + 59) - minute * 60;
    // Naming fields pays only for a few seconds (the agent's short windows);
    // past that, the whole hash is cheaper to ask for than the list of names.
    if last - first + 1 > MAX_SECONDS_BY_NAME {
        return None;
    }
    let suffixes: &[&str] = match kind {
        MetricKind::Counter => &[""],
        MetricKind::Gauge => &[":l", ":lo", ":hi", ":s", ":n"],
        MetricKind::Distribution | MetricKind::Set => return None,
    };
    Some(
        (first..=last)
            .flat_map(|s| suffixes.iter().map(move |suffix| format!("{s}{suffix}")))
            .collect(),
    )
}

/// A unique-enough suffix for a scratch key.
fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}

/// One minute hash to read for one series of one query.
struct ReadJob {
    query: usize,
    series: usize,
    minute: i64,
    key: String,
    /// The fields to read (`HMGET`), or `None` for the whole hash (`HGETALL`).
    fields: Option<Vec<String>>,
}

/// Reads in progress: queued jobs, the series being decoded, and each
/// query's finished series combined so far.
struct Reads {
    jobs: Vec<ReadJob>,
    current: Option<(usize, usize)>,
    seconds: BTreeMap<i64, Aggregate>,
    combined: Vec<window::Combined>,
    set_counts: Vec<Option<f64>>,
}

impl Reads {
    fn new(queries: usize) -> Reads {
        Reads {
            jobs: Vec::new(),
            current: None,
            seconds: BTreeMap::new(),
            combined: (0..queries).map(|_| window::Combined::default()).collect(),
            set_counts: vec![None; queries],
        }
    }

    fn push(&mut self, job: ReadJob) {
        self.jobs.push(job);
    }

    fn queued(&self) -> usize {
        self.jobs.len()
    }

    /// Reduces the series just decoded to its window.
    fn finish_series(&mut self) {
        if let Some((query, _)) = self.current.take() {
            let seconds = std::mem::take(&mut self.seconds);
            if let Some(w) = SeriesWindow::from_seconds(seconds.values()) {
                self.combined[query].add(w);
            }
        }
    }
}

/// What the first round trip of a query found: the series to read.
struct Plan {
    kind: MetricKind,
    aggregation: window::Aggregation,
    /// For each series: its tags.
    series: Vec<String>,
}

#[async_trait]
impl Store for RedisStore {
    async fn write(&self, batch: &WriteBatch) -> Result<(), StoreError> {
        let ttl = self.ttl_secs.to_string();
        let server = batch.server_id.to_string();
        let seq = batch.seq.to_string();
        let mut pipes: Vec<Group> = Vec::new();
        if !self.is_cluster() {
            // Makes every EVALSHA below succeed even right after a Redis
            // restart. (A restart between two chunks fails the write, and the
            // retry starts with this again.)
            let mut load = Group::default();
            load.cmd("SCRIPT").arg("LOAD").arg(WRITE_SCRIPT);
            pipes.push(load);
        }
        let mut queued = 0;
        for write in &batch.series {
            let key = &write.key;
            let mut pipe = Group::default();
            let index = self.index_key(&key.name);
            let member = format!("{}|{}", key.kind.code(), key.tags);
            let last_second = write.points.iter().map(|(s, _)| *s).max().unwrap_or(0);
            if key.kind == MetricKind::Set {
                for (second, agg) in &write.points {
                    let Aggregate::Set(members) = agg else {
                        continue;
                    };
                    if members.is_empty() {
                        continue;
                    }
                    let set_key = self.set_key(&key.name, *second, &key.tags);
                    pipe.cmd("PFADD")
                        .arg(&set_key)
                        .arg(members.iter().collect::<Vec<_>>());
                    pipe.cmd("EXPIRE").arg(&set_key).arg(self.ttl_secs);
                }
                pipe.cmd("ZADD")
                    .arg(&index)
                    .arg("GT")
                    .arg(last_second)
                    .arg(&member);
                pipe.cmd("ZREMRANGEBYSCORE")
                    .arg(&index)
                    .arg("-inf")
                    .arg(last_second - self.ttl_secs as i64);
                pipe.cmd("EXPIRE").arg(&index).arg(self.ttl_secs);
            } else {
                let mut by_minute: BTreeMap<i64, Vec<String>> = BTreeMap::new();
                for (second, agg) in &write.points {
                    let args = by_minute.entry(second.div_euclid(60)).or_default();
                    write_ops(second.rem_euclid(60), agg, args);
                }
                for (minute, ops) in by_minute {
                    let mut args = Vec::with_capacity(5 + ops.len());
                    args.extend([
                        ttl.clone(),
                        server.clone(),
                        seq.clone(),
                        member.clone(),
                        last_second.to_string(),
                    ]);
                    args.extend(ops);
                    let data = self.minute_key(&key.name, key.kind, minute, &key.tags);
                    self.add_write(&mut pipe, [data, index.clone()], args);
                }
            }
            queued += pipe.len();
            pipes.push(pipe);
            if queued >= MAX_COMMANDS_PER_ROUND_TRIP {
                // Safe to split: each series-minute applies a flush at most once.
                self.run(std::mem::take(&mut pipes)).await?;
                queued = 0;
            }
        }
        self.run(pipes).await?;
        Ok(())
    }

    async fn query_many(&self, queries: &[WindowQuery]) -> Result<Vec<QueryOutcome>, StoreError> {
        // Round trip 1: which series of each name had data in the window.
        let index_pipes: Vec<Group> = queries
            .iter()
            .map(|q| {
                let mut p = Group::default();
                p.cmd("ZRANGEBYSCORE")
                    .arg(self.index_key(&q.name))
                    .arg(q.start())
                    .arg("+inf");
                p
            })
            .collect();
        let index_replies = self.run(index_pipes).await?;

        let mut plans: Vec<Result<Option<Plan>, window::QueryError>> =
            Vec::with_capacity(queries.len());
        for (q, reply) in queries.iter().zip(&index_replies) {
            let members: Vec<String> = match reply.first() {
                Some(Value::Array(items)) | Some(Value::Set(items)) => {
                    items.iter().filter_map(as_string).collect()
                }
                _ => Vec::new(),
            };
            let matching: Vec<(MetricKind, String)> = members
                .iter()
                .filter_map(|m| {
                    let (code, tags) = m.split_once('|')?;
                    let kind = MetricKind::from_statsd(code)?;
                    Some((kind, tags.to_string()))
                })
                .filter(|(kind, tags)| q.kind.is_none_or(|k| k == *kind) && q.tags.matches(tags))
                .collect();
            let plan = window::resolve_kind(q, matching.iter().map(|(k, _)| *k)).and_then(|kind| {
                let Some(kind) = kind else { return Ok(None) };
                let aggregation = window::aggregation_for(q, kind)?;
                let series = matching
                    .into_iter()
                    .filter(|(k, _)| *k == kind)
                    .map(|(_, t)| t)
                    .collect();
                Ok(Some(Plan {
                    kind,
                    aggregation,
                    series,
                }))
            });
            plans.push(plan);
        }

        // Round trip 2 (more for very large reads): the data of those series,
        // folded into one window per series as its replies arrive.
        let mut reads = Reads::new(queries.len());
        for (qi, (q, plan)) in queries.iter().zip(&plans).enumerate() {
            let Ok(Some(plan)) = plan else { continue };
            if plan.kind == MetricKind::Set {
                let keys: Vec<String> = plan
                    .series
                    .iter()
                    .flat_map(|tags| (q.start()..=q.end).map(move |s| (s, tags)))
                    .map(|(s, tags)| self.set_key(&q.name, s, tags))
                    .collect();
                reads.set_counts[qi] = Some(self.count_union(&q.name, keys).await?);
                continue;
            }
            let first_minute = q.start().div_euclid(60);
            for (si, tags) in plan.series.iter().enumerate() {
                for minute in first_minute..=q.end.div_euclid(60) {
                    reads.push(ReadJob {
                        query: qi,
                        series: si,
                        minute,
                        key: self.minute_key(&q.name, plan.kind, minute, tags),
                        fields: fields_in_window(plan.kind, minute, q.start(), q.end),
                    });
                    if reads.queued() >= MAX_COMMANDS_PER_ROUND_TRIP {
                        self.read_chunk(&mut reads, queries, &plans).await?;
                    }
                }
            }
        }
        self.read_chunk(&mut reads, queries, &plans).await?;
        reads.finish_series();

        let mut outcomes = Vec::with_capacity(queries.len());
        for (qi, (q, plan)) in queries.iter().zip(plans).enumerate() {
            outcomes.push(match plan {
                Err(e) => Err(e),
                Ok(None) => Ok(None),
                Ok(Some(plan)) => {
                    let combined = &mut reads.combined[qi];
                    if let Some(count) = reads.set_counts[qi].filter(|c| *c > 0.0) {
                        combined.add(SeriesWindow::SetCount(count));
                    }
                    Ok(combined.value(plan.aggregation, q.window_secs))
                }
            });
        }
        Ok(outcomes)
    }

    async fn alert_states(&self, keys: &[String]) -> Result<Vec<Option<String>>, StoreError> {
        let groups: Vec<Group> = if self.is_cluster() {
            // Each state key has its own hash tag, so one GET per key.
            keys.iter()
                .map(|k| {
                    let mut g = Group::default();
                    g.cmd("GET").arg(self.alert_key(k));
                    g
                })
                .collect()
        } else {
            keys.chunks(1000)
                .map(|chunk| {
                    let mut g = Group::default();
                    let cmd = g.cmd("MGET");
                    for k in chunk {
                        cmd.arg(self.alert_key(k));
                    }
                    g
                })
                .collect()
        };
        let replies = self.run(groups).await?;
        let mut states = Vec::with_capacity(keys.len());
        for reply in replies.iter().flatten() {
            match reply {
                Value::Array(values) => states.extend(values.iter().map(as_string)),
                other => states.push(as_string(other)),
            }
        }
        if states.len() != keys.len() {
            return Err(StoreError::Protocol(format!(
                "{} alert states for {} keys",
                states.len(),
                keys.len()
            )));
        }
        Ok(states)
    }

    async fn swap_alert_state(
        &self,
        key: &str,
        expected: Option<&str>,
        new: &str,
    ) -> Result<bool, StoreError> {
        let mut invocation = self.swap_script.prepare_invoke();
        invocation
            .key(self.alert_key(key))
            .arg(if expected.is_some() { "1" } else { "0" })
            .arg(expected.unwrap_or(""))
            .arg(new);
        let swapped: i64 = match &self.conn {
            Connection::Single(manager) => {
                let mut conn = manager.clone();
                invocation.invoke_async(&mut conn).await
            }
            Connection::Cluster { .. } => {
                let mut conn = self.cluster_conn().await?;
                invocation.invoke_async(&mut conn).await
            }
        }
        .map_err(unavailable)?;
        Ok(swapped == 1)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let mut p = Group::default();
        p.cmd("PING");
        self.run(vec![p]).await.map(|_| ())
    }
}

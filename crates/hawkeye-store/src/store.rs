//! [`Store`]: the one storage interface, shared by the server (writes,
//! queries) and the agent (window reads, alert state); what it answers
//! besides windows (a compaction pass, the servers' watermark), and the
//! range read of a store without one of its own.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::alerts::{AlertCommit, AlertRead, AlertSnapshot, OutboxEntry, Settle};
use crate::batch::WriteBatch;
use crate::error::StoreError;
use crate::grouped::{GroupedOutcome, GroupedQuery};
use crate::range::{points_of, RangeOutcome, RangeQuery};
use crate::window::{QueryOutcome, WindowQuery};

/// The storage interface shared by the server (writes, queries) and the
/// agent (window reads, alert state).
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Applies a flush. Idempotent per `(server_id, seq)` and series.
    async fn write(&self, batch: &WriteBatch) -> Result<(), StoreError>;

    /// Reads several windows at once (the Redis store pipelines them: two
    /// round trips whatever the number of queries). Each query has its own
    /// outcome: `Ok(None)` means no data in the window.
    async fn query_many(&self, queries: &[WindowQuery]) -> Result<Vec<QueryOutcome>, StoreError>;

    /// Reads one window.
    async fn query(&self, query: &WindowQuery) -> Result<QueryOutcome, StoreError> {
        let mut outcomes = self.query_many(std::slice::from_ref(query)).await?;
        outcomes
            .pop()
            .ok_or_else(|| StoreError::Protocol("no outcome for the query".into()))
    }

    /// The alert states of `read.keys`, the store's marker (set to
    /// `read.marker` when it has none) and the running silences, in one
    /// round trip. See [`crate::alerts`].
    async fn read_alerts(&self, read: &AlertRead) -> Result<AlertSnapshot, StoreError>;

    /// Applies a state change and records its mail, atomically, if the state
    /// is still `commit.expected`. Returns whether it did: two agents sharing
    /// a store use this so that only one of them acts on a transition.
    async fn commit_alert(&self, commit: &AlertCommit) -> Result<bool, StoreError>;

    /// Up to `max` outbox entries nobody holds (never claimed, lease run out,
    /// or due for a retry), each leased to the caller until `now_ms + lease`.
    async fn claim_outbox(
        &self,
        now_ms: u64,
        lease: Duration,
        max: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError>;

    /// Removes a delivered (or abandoned) entry, or makes it claimable again
    /// at a later time.
    async fn settle_outbox(&self, id: &str, settle: Settle) -> Result<(), StoreError>;

    /// Stores (or replaces) silence `id` until `ends_at_ms` (unix ms), when
    /// it disappears by itself.
    async fn put_silence(&self, id: &str, silence: &str, ends_at_ms: u64)
        -> Result<(), StoreError>;

    /// Ends silence `id` now; false when there was none.
    async fn expire_silence(&self, id: &str) -> Result<bool, StoreError>;

    /// Every silence still running at `now_ms`.
    async fn silences(&self, now_ms: u64) -> Result<Vec<String>, StoreError>;

    /// States written by agents before state keys were versioned (the
    /// `P:alert:{<key>}` keys), for the agent to migrate; `None` where absent.
    async fn legacy_alert_states(&self, keys: &[String])
        -> Result<Vec<Option<String>>, StoreError>;

    /// Removes migrated legacy states.
    async fn delete_legacy_alert_states(&self, keys: &[String]) -> Result<(), StoreError>;

    /// Records that server `server_id` has written every event it stamped
    /// up to and including unix second `second`; the record counts for
    /// `live_for` unless written again (docs/cluster.md, "Watermark").
    /// Stores that keep no watermark ignore it.
    async fn put_watermark(
        &self,
        server_id: u64,
        second: i64,
        live_for: Duration,
    ) -> Result<(), StoreError> {
        let _ = (server_id, second, live_for);
        Ok(())
    }

    /// Forgets a server's watermark (it stopped: nothing more to wait for).
    async fn remove_watermark(&self, server_id: u64) -> Result<(), StoreError> {
        let _ = server_id;
        Ok(())
    }

    /// The newest second every live server has flushed (the oldest of
    /// their watermarks); `None` when no server has a live one.
    async fn watermark(&self) -> Result<Option<Watermark>, StoreError> {
        Ok(None)
    }

    /// Checks that the store answers.
    async fn ping(&self) -> Result<(), StoreError>;

    // Grouped reads (issue 11, `group_by`); kept together for merges.

    /// Reads several windows at once, each split into groups by the values
    /// of its `group_by` tags ([`crate::grouped`]): as many round trips as
    /// [`Store::query_many`], whatever the number of groups.
    async fn query_grouped(
        &self,
        queries: &[GroupedQuery],
    ) -> Result<Vec<GroupedOutcome>, StoreError>;

    // Alert listing and history (issue 11, `hawkeye alerts`).

    /// Every alert state whose key starts with `prefix`: `(key, state)`,
    /// sorted by key.
    async fn alert_states(&self, prefix: &str) -> Result<Vec<(String, String)>, StoreError>;

    /// Appends `entries` (opaque text) to the history stream `stream`,
    /// keeping the latest `max_len` entries.
    async fn append_history(
        &self,
        stream: &str,
        entries: &[String],
        max_len: usize,
    ) -> Result<(), StoreError>;

    /// The entries of `stream` appended at or after `since_ms` (unix ms,
    /// the store's clock), oldest first, each with when it was appended.
    async fn history(&self, stream: &str, since_ms: u64) -> Result<Vec<(u64, String)>, StoreError>;

    // Range reads (issue 10, `metric.range` and the status page).

    /// One value per step of a window ([`crate::range`]): each step read as a
    /// window query of its own, the kind resolved once for the whole range.
    /// By default made of [`Store::query_many`]; the Redis store finds the
    /// series once and reads many steps per round trip.
    async fn query_range(&self, range: &RangeQuery) -> Result<RangeOutcome, StoreError> {
        read_by_windows(self, range).await
    }

    // Rollups (issue 12).

    /// Compacts the rollup hours this store wrote that closed before `now`
    /// (unix seconds) into packed day strings (docs/storage.md,
    /// "Compaction"); the server calls it about once a minute. Exact and
    /// idempotent; stores that keep no packed rollups do nothing.
    async fn compact(&self, now: i64) -> Result<Compaction, StoreError> {
        let _ = now;
        Ok(Compaction::default())
    }
}

/// What one [`Store::compact`] pass did (docs/storage.md, "Compaction").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Compaction {
    /// Series-hours merged into their day strings.
    pub compacted: usize,
    /// Series-hours written to since they were read: left for the next pass.
    pub retried: usize,
    /// Slot-hours (a name's shard, an hour it was written in) this store
    /// still has to look at (open hours included).
    pub waiting: usize,
    /// Slot-hours written since the last pass that this store did not
    /// remember to compact: `HAWKEYE_MAX_PENDING_COMPACTIONS` was reached.
    pub not_remembered: usize,
}

/// What [`Store::watermark`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watermark {
    /// Every live server has written every event it stamped up to and
    /// including this unix second.
    pub second: i64,
    /// How many servers have a live watermark.
    pub servers: usize,
}

#[async_trait]
impl<S: Store + ?Sized> Store for Arc<S> {
    async fn write(&self, batch: &WriteBatch) -> Result<(), StoreError> {
        (**self).write(batch).await
    }
    async fn query_many(&self, queries: &[WindowQuery]) -> Result<Vec<QueryOutcome>, StoreError> {
        (**self).query_many(queries).await
    }
    async fn read_alerts(&self, read: &AlertRead) -> Result<AlertSnapshot, StoreError> {
        (**self).read_alerts(read).await
    }
    async fn commit_alert(&self, commit: &AlertCommit) -> Result<bool, StoreError> {
        (**self).commit_alert(commit).await
    }
    async fn claim_outbox(
        &self,
        now_ms: u64,
        lease: Duration,
        max: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        (**self).claim_outbox(now_ms, lease, max).await
    }
    async fn settle_outbox(&self, id: &str, settle: Settle) -> Result<(), StoreError> {
        (**self).settle_outbox(id, settle).await
    }
    async fn put_silence(
        &self,
        id: &str,
        silence: &str,
        ends_at_ms: u64,
    ) -> Result<(), StoreError> {
        (**self).put_silence(id, silence, ends_at_ms).await
    }
    async fn expire_silence(&self, id: &str) -> Result<bool, StoreError> {
        (**self).expire_silence(id).await
    }
    async fn silences(&self, now_ms: u64) -> Result<Vec<String>, StoreError> {
        (**self).silences(now_ms).await
    }
    async fn legacy_alert_states(
        &self,
        keys: &[String],
    ) -> Result<Vec<Option<String>>, StoreError> {
        (**self).legacy_alert_states(keys).await
    }
    async fn delete_legacy_alert_states(&self, keys: &[String]) -> Result<(), StoreError> {
        (**self).delete_legacy_alert_states(keys).await
    }
    async fn put_watermark(
        &self,
        server_id: u64,
        second: i64,
        live_for: Duration,
    ) -> Result<(), StoreError> {
        (**self).put_watermark(server_id, second, live_for).await
    }
    async fn remove_watermark(&self, server_id: u64) -> Result<(), StoreError> {
        (**self).remove_watermark(server_id).await
    }
    async fn watermark(&self) -> Result<Option<Watermark>, StoreError> {
        (**self).watermark().await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        (**self).ping().await
    }
    async fn query_grouped(
        &self,
        queries: &[GroupedQuery],
    ) -> Result<Vec<GroupedOutcome>, StoreError> {
        (**self).query_grouped(queries).await
    }
    async fn alert_states(&self, prefix: &str) -> Result<Vec<(String, String)>, StoreError> {
        (**self).alert_states(prefix).await
    }
    async fn append_history(
        &self,
        stream: &str,
        entries: &[String],
        max_len: usize,
    ) -> Result<(), StoreError> {
        (**self).append_history(stream, entries, max_len).await
    }
    async fn history(&self, stream: &str, since_ms: u64) -> Result<Vec<(u64, String)>, StoreError> {
        (**self).history(stream, since_ms).await
    }
    async fn query_range(&self, range: &RangeQuery) -> Result<RangeOutcome, StoreError> {
        (**self).query_range(range).await
    }
    async fn compact(&self, now: i64) -> Result<Compaction, StoreError> {
        (**self).compact(now).await
    }
}

/// A range read made of window reads, in one [`Store::query_many`] call: the
/// whole range first (which resolves the kind, so that every step reads the
/// same one), then each step. What a store without a range read of its own
/// does (the in-memory store, where a window read costs no round trip).
pub async fn read_by_windows<S: Store + ?Sized>(
    store: &S,
    range: &RangeQuery,
) -> Result<RangeOutcome, StoreError> {
    let steps = match range.steps() {
        Ok(steps) => steps,
        Err(e) => return Ok(Err(e)),
    };
    let mut queries = Vec::with_capacity(steps.len() + 1);
    queries.push(range.whole());
    queries.extend(steps.iter().cloned());
    let mut outcomes = store.query_many(&queries).await?.into_iter();
    match outcomes.next() {
        Some(Err(e)) => Ok(Err(e)),
        Some(Ok(None)) => Ok(Ok(Vec::new())),
        Some(Ok(Some(_))) => Ok(points_of(&steps, outcomes)),
        None => Err(StoreError::Protocol("no outcome for the range".into())),
    }
}

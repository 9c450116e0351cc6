//! What the store keeps for the agent besides metric data: alert states, the
//! outbox of mail not yet accepted by a relay, silences, and a marker that
//! tells "the store lost its data" from "nothing happened yet".
//!
//! The store treats every value here as opaque text: the agent decides what
//! a state, a mail or a silence means (`docs/alerts.md`). What the store
//! guarantees:
//! - a state change and the mail it calls for are recorded together or not
//!   at all ([`AlertCommit`]), and only if the state is still what the agent
//!   read (compare-and-swap), so two agents never both act on one change;
//! - an outbox entry is handed to one claimant at a time until its lease
//!   runs out ([`crate::Store::claim_outbox`]), and stays until it is settled
//!   as delivered;
//! - every key expires: states after [`AlertCommit::ttl`] without a write,
//!   silences when they end, the outbox and the marker after the TTL the
//!   agent gives.

use std::time::Duration;

/// One mail waiting in the outbox: an id unique to the notice (the agent
/// derives it from the episode and the notice, so recording it twice is
/// harmless) and the serialized mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    pub id: String,
    pub body: String,
}

/// A state change, and the mail it calls for, written atomically.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertCommit {
    /// The trigger's state key.
    pub key: String,
    /// The state the agent read (`None`: absent). The commit applies only if
    /// the stored state is still this.
    pub expected: Option<String>,
    /// The new state; `None` deletes it.
    pub new: Option<String>,
    /// How long the state (and the outbox) lives without another write.
    pub ttl: Duration,
    /// Mail recorded with the change.
    pub outbox: Vec<OutboxEntry>,
}

/// What the agent reads at every tick, in one round trip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertRead {
    /// State keys to read.
    pub keys: Vec<String>,
    /// The marker to store when there is none (a fresh store, or one that
    /// lost its data). The store returns the marker it holds.
    pub marker: String,
    /// How long the marker lives without being read.
    pub marker_ttl: Duration,
    /// Unix milliseconds: silences that ended before it are not returned.
    pub now_ms: u64,
}

/// The answer to an [`AlertRead`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AlertSnapshot {
    /// One per key, in order; `None` where there is no state.
    pub states: Vec<Option<String>>,
    /// The marker the store holds (the one given if it had none).
    pub marker: String,
    /// Every silence still running, as stored.
    pub silences: Vec<String>,
}

/// What became of a claimed outbox entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settle {
    /// Accepted by the relay, or given up on: removed.
    Done,
    /// Failed; claimable again from this time (unix milliseconds).
    RetryAt(u64),
}

//! The Lua scripts the store runs in Redis, kept as `.lua` files beside this
//! one. What each does: docs/storage.md ("Writes", "Reads").

/// Applies one flush of one series-minute, once (KEYS and ARGV in the file).
pub const WRITE_SCRIPT: &str = include_str!("scripts/write.lua");

/// Reads minute hashes and answers one string (KEYS and ARGV in the file).
pub const READ_SCRIPT: &str = include_str!("scripts/read.lua");

/// Compacts one series-hour into its day string, if neither changed since
/// they were read (KEYS and ARGV in the file). Sent as `EVAL`: it is short.
pub const COMPACT_SCRIPT: &str = include_str!("scripts/compact.lua");

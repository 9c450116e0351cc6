//! The errors a request is answered with: JSON-RPC's standard codes,
//! hawkeye's own (docs/protocol.md, "Errors"), and the error object.

use serde::{Deserialize, Serialize};

/// Standard JSON-RPC error codes, and hawkeye's server errors (-32000..).
pub mod code {
    pub const PARSE_ERROR: i64 = -32700;
    pub const INVALID_REQUEST: i64 = -32600;
    pub const METHOD_NOT_FOUND: i64 = -32601;
    pub const INVALID_PARAMS: i64 = -32602;
    pub const INTERNAL_ERROR: i64 = -32603;
    /// The server holds `HAWKEYE_MAX_SERIES` series and refused a new one.
    pub const TOO_MANY_SERIES: i64 = -32001;
    /// The server's buffer is full (the store has been unreachable too long).
    pub const BUFFER_FULL: i64 = -32002;
    /// A read from the store failed.
    pub const STORE_UNAVAILABLE: i64 = -32003;
    /// The request line is longer than the server's limit; the connection closes.
    pub const LINE_TOO_LONG: i64 = -32004;
    /// The server has too many connections and none idle to close: this one
    /// closes. Also sent to the longest-idle connection when it is closed to
    /// admit a new one.
    pub const TOO_MANY_CONNECTIONS: i64 = -32005;
    /// Partial request lines across all connections passed the server's
    /// budget; this connection held the most and closes.
    pub const INPUT_BUDGET: i64 = -32006;
    /// A request line stayed incomplete past the server's deadline; the
    /// connection closes.
    pub const LINE_TIMEOUT: i64 = -32007;
}

/// An error as sent back to the caller.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
}

impl RpcError {
    pub fn new(code: i64, message: impl Into<String>) -> RpcError {
        RpcError {
            code,
            message: message.into(),
            data: None,
        }
    }

    pub fn with_data(mut self, data: serde_json::Value) -> RpcError {
        self.data = Some(data);
        self
    }

    pub fn invalid_params(message: impl Into<String>) -> RpcError {
        RpcError::new(code::INVALID_PARAMS, message)
    }
}

impl std::fmt::Display for RpcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (code {})", self.message, self.code)
    }
}

impl std::error::Error for RpcError {}

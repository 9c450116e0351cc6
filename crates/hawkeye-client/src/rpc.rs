//! Request/response calls to a hawkeye server (`metric.query`,
//! `server.stats`, `metric.send` with its answer, `server.ping`): what the
//! CLI and tests use. Recording metrics from an application goes through
//! [`Client`](crate::Client) instead, which never waits.

use std::path::{Path, PathBuf};

use hawkeye_protocol::jsonrpc::{
    method, QueryParams, QueryResult, RangeParams, RangeResult, RpcError, SendResult, StatsResult,
};
use hawkeye_protocol::rpc_call::{decode_reply, encode_request, Reply};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;

#[derive(Debug, thiserror::Error)]
pub enum RpcCallError {
    #[error("cannot connect to the hawkeye server at {path}: {source}")]
    Connect {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("connection to the hawkeye server failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("the hawkeye server closed the connection without answering")]
    Closed,
    #[error("unreadable answer from the hawkeye server: {0}")]
    Decode(String),
    /// The server answered with a JSON-RPC error (`data` when it gave any).
    #[error("the hawkeye server answered: {message} (code {code})")]
    Server {
        code: i64,
        message: String,
        data: Option<Value>,
    },
}

/// An error reply as a call error.
fn server_error(error: RpcError) -> RpcCallError {
    RpcCallError::Server {
        code: error.code,
        message: error.message,
        data: error.data,
    }
}

/// One connection; calls are made one after the other.
pub struct RpcConnection {
    lines: Lines<BufReader<OwnedReadHalf>>,
    writer: OwnedWriteHalf,
    next_id: u64,
}

impl RpcConnection {
    pub async fn connect(path: impl AsRef<Path>) -> Result<RpcConnection, RpcCallError> {
        let path = path.as_ref();
        let stream = UnixStream::connect(path)
            .await
            .map_err(|source| RpcCallError::Connect {
                path: path.to_path_buf(),
                source,
            })?;
        let (read, writer) = stream.into_split();
        Ok(RpcConnection {
            lines: BufReader::new(read).lines(),
            writer,
            next_id: 1,
        })
    }

    /// Calls `method` with `params` (JSON-RPC 2.0) and returns its result.
    pub async fn call(
        &mut self,
        method: &str,
        params: Option<Value>,
    ) -> Result<Value, RpcCallError> {
        let id = self.next_id;
        self.next_id += 1;
        let bytes = encode_request(id, method, params.as_ref())
            .map_err(|e| RpcCallError::Decode(e.to_string()))?;
        // An error the server sends about the connection itself (too many
        // connections, a line too long...) has no id and is followed by
        // the close: that error, not the broken pipe or the close it
        // causes, is what the caller must see.
        if let Err(e) = self.writer.write_all(&bytes).await {
            return Err(self.error_before_close().await.unwrap_or(e.into()));
        }
        let mut connection_error = None;
        loop {
            let line = match self.lines.next_line().await {
                Ok(Some(line)) => line,
                Ok(None) => return Err(connection_error.unwrap_or(RpcCallError::Closed)),
                Err(e) => return Err(connection_error.unwrap_or(e.into())),
            };
            let reply = decode_reply(&line).map_err(|e| RpcCallError::Decode(e.to_string()))?;
            if reply.id != Some(id) {
                // An answer to something else (e.g. an error about an earlier
                // line), or about the connection (no id).
                if reply.id.is_none() {
                    connection_error = reply.outcome.err().map(server_error);
                }
                continue;
            }
            return reply.outcome.map_err(server_error);
        }
    }

    /// After a failed write: the error the server sent before it closed the
    /// connection, if any (read for a short while at most).
    async fn error_before_close(&mut self) -> Option<RpcCallError> {
        let mut found = None;
        let read_rest = async {
            while let Ok(Some(line)) = self.lines.next_line().await {
                if let Ok(Reply { id: None, outcome }) = decode_reply(&line) {
                    found = outcome.err().map(server_error);
                }
            }
        };
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), read_rest).await;
        found
    }

    fn decode<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, RpcCallError> {
        serde_json::from_value(value).map_err(|e| RpcCallError::Decode(e.to_string()))
    }

    /// `metric.send` as a request: the server says what it accepted and
    /// why it rejected each other line. When it rejected every line it
    /// answers with an error carrying that same result; it is returned as
    /// the result here (with `accepted` 0), so callers see every rejection
    /// the same way.
    pub async fn send_lines(&mut self, lines: &[String]) -> Result<SendResult, RpcCallError> {
        match self.call(method::SEND, Some(json!(lines))).await {
            Ok(result) => Self::decode(result),
            Err(RpcCallError::Server {
                code,
                message,
                data: Some(data),
            }) => match serde_json::from_value::<SendResult>(data.clone()) {
                Ok(result) if !result.rejected.is_empty() => Ok(result),
                _ => Err(RpcCallError::Server {
                    code,
                    message,
                    data: Some(data),
                }),
            },
            Err(e) => Err(e),
        }
    }

    /// `metric.query`.
    pub async fn query(&mut self, params: &QueryParams) -> Result<QueryResult, RpcCallError> {
        let params =
            serde_json::to_value(params).map_err(|e| RpcCallError::Decode(e.to_string()))?;
        let result = self.call(method::QUERY, Some(params)).await?;
        Self::decode(result)
    }

    /// `metric.range`.
    pub async fn range(&mut self, params: &RangeParams) -> Result<RangeResult, RpcCallError> {
        let params =
            serde_json::to_value(params).map_err(|e| RpcCallError::Decode(e.to_string()))?;
        let result = self.call(method::RANGE, Some(params)).await?;
        Self::decode(result)
    }

    /// `server.stats`.
    pub async fn stats(&mut self) -> Result<StatsResult, RpcCallError> {
        let result = self.call(method::STATS, None).await?;
        Self::decode(result)
    }

    /// `server.ping`.
    pub async fn ping(&mut self) -> Result<(), RpcCallError> {
        self.call(method::PING, None).await.map(|_| ())
    }
}

//! The optional wait for replicas after a flush's writes
//! (`HAWKEYE_REDIS_WAIT_REPLICAS`): Redis replicates asynchronously, so a
//! master that dies right after answering can take a write with it. `WAIT`
//! on the connection that wrote holds the answer until enough replicas
//! have the writes; fewer acknowledgements than asked fail the flush, which
//! the caller retries (the flush markers keep the retry exactly-once).
//! docs/cluster.md, "Waiting for replicas".

use std::time::Duration;

use redis::{Cmd, Value};

use crate::error::StoreError;

/// How many replicas must acknowledge, and how long to wait for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReplicaWait {
    pub(crate) replicas: u32,
    pub(crate) timeout: Duration,
}

impl ReplicaWait {
    /// The `WAIT` command; sent after the writes, on their connection.
    pub(crate) fn cmd(&self) -> Cmd {
        let mut cmd = redis::cmd("WAIT");
        // At least 1ms: Redis reads 0 as "for ever" (the config refuses it).
        let ms = self.timeout.as_millis().max(1);
        cmd.arg(self.replicas).arg(ms as u64);
        cmd
    }

    /// Checks `WAIT`'s reply: the number of replicas that acknowledged.
    pub(crate) fn check(&self, reply: &Value) -> Result<(), StoreError> {
        match reply {
            Value::Int(n) if *n >= i64::from(self.replicas) => Ok(()),
            Value::Int(n) => Err(StoreError::Unavailable(format!(
                "{n} of {} replicas acknowledged the flush within {:?} (HAWKEYE_REDIS_WAIT_REPLICAS); it is retried",
                self.replicas, self.timeout
            ))),
            Value::ServerError(e) => Err(StoreError::Unavailable(format!(
                "Redis refused WAIT: {}",
                redis::RedisError::from(e.clone())
            ))),
            other => Err(StoreError::Protocol(format!("WAIT answered {other:?}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fewer_acknowledgements_than_asked_fail() {
        let wait = ReplicaWait {
            replicas: 2,
            timeout: Duration::from_millis(300),
        };
        assert!(wait.check(&Value::Int(2)).is_ok());
        assert!(wait.check(&Value::Int(3)).is_ok());
        let err = wait.check(&Value::Int(1)).unwrap_err().to_string();
        assert!(err.contains("1 of 2 replicas"), "{err}");
        assert!(matches!(
            wait.check(&Value::Nil),
            Err(StoreError::Protocol(_))
        ));
        let packed = String::from_utf8(wait.cmd().get_packed_command()).unwrap();
        assert!(
            packed.ends_with("$4\r\nWAIT\r\n$1\r\n2\r\n$3\r\n300\r\n"),
            "{packed:?}"
        );
    }
}

//! What the server's answer to one `metric.send` request means for the
//! events it carried (docs/client.md): an error means none was taken; a
//! result lists the lines it rejected, whose events are dropped, never
//! sent again; every other event was delivered.

use hawkeye_protocol::jsonrpc::{RpcError, SendResult};
use serde_json::Value;

use super::outbox::Message;

/// The account of one answered request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Settled {
    pub(crate) delivered: u64,
    pub(crate) rejected: u64,
    /// Why, when the server rejected anything: the error's message, or the
    /// first rejected line's reason.
    pub(crate) reason: Option<String>,
}

pub(crate) fn settle(message: &Message, outcome: Result<Value, RpcError>) -> Settled {
    let all_delivered = Settled {
        delivered: message.events,
        rejected: 0,
        reason: None,
    };
    let result = match outcome {
        Err(error) => {
            return Settled {
                delivered: 0,
                rejected: message.events,
                reason: Some(error.message),
            }
        }
        Ok(Value::Null) => return all_delivered,
        Ok(result) => result,
    };
    let result = match serde_json::from_value::<SendResult>(result) {
        Ok(result) => result,
        Err(e) => {
            // Answered all the same: sending it again could count it twice.
            tracing::warn!(error = %e, "hawkeye client: unexpected answer to metric.send");
            return all_delivered;
        }
    };
    // Each line counts once, however often a (faulty) server lists it, so
    // that no more events are rejected than the request carried.
    let mut indexes: Vec<usize> = result.rejected.iter().map(|r| r.index).collect();
    indexes.sort_unstable();
    indexes.dedup();
    let rejected: u64 = indexes
        .iter()
        .filter_map(|&i| message.line_events.get(i))
        .sum();
    Settled {
        delivered: message.events - rejected,
        rejected,
        reason: result.rejected.into_iter().next().map(|r| r.error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hawkeye_protocol::jsonrpc::{code, Rejected};
    use serde_json::json;

    fn message() -> Message {
        Message {
            id: 1,
            bytes: Vec::new(),
            line_events: vec![3, 5, 0, 7],
            events: 15,
        }
    }

    fn rejecting(indexes: &[usize]) -> Result<Value, RpcError> {
        let rejected = indexes
            .iter()
            .map(|&index| Rejected {
                index,
                error: format!("line {index} is bad"),
            })
            .collect();
        Ok(serde_json::to_value(SendResult {
            accepted: 4 - indexes.len(),
            rejected,
        })
        .unwrap())
    }

    fn settled(delivered: u64, rejected: u64, reason: Option<&str>) -> Settled {
        Settled {
            delivered,
            rejected,
            reason: reason.map(str::to_string),
        }
    }

    #[test]
    fn a_result_rejects_the_events_of_the_lines_it_lists() {
        assert_eq!(settle(&message(), rejecting(&[])), settled(15, 0, None));
        assert_eq!(
            settle(&message(), rejecting(&[1, 3])),
            settled(3, 12, Some("line 1 is bad"))
        );
        // A line without events of its own (an HTTP counter) still says why.
        assert_eq!(
            settle(&message(), rejecting(&[2])),
            settled(15, 0, Some("line 2 is bad"))
        );
    }

    #[test]
    fn an_error_rejects_the_whole_request() {
        let error = RpcError::new(code::TOO_MANY_SERIES, "too many series");
        assert_eq!(
            settle(&message(), Err(error)),
            settled(0, 15, Some("too many series"))
        );
    }

    #[test]
    fn a_faulty_server_cannot_reject_more_than_was_sent() {
        // Listed twice, and out of range: each line counts once, at most.
        assert_eq!(
            settle(&message(), rejecting(&[3, 3, 3, 99])),
            settled(8, 7, Some("line 3 is bad"))
        );
        // An answer of the wrong shape still answers the request.
        assert_eq!(settle(&message(), Ok(json!("what?"))), settled(15, 0, None));
        assert_eq!(settle(&message(), Ok(Value::Null)), settled(15, 0, None));
    }
}

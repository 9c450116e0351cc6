//! What [`Pending`] holds, as `metric.send` requests of at most
//! `max_message_bytes` each (a longer metric line goes alone). The request
//! bytes are written by hawkeye-protocol's
//! [`SendRequest`](hawkeye_protocol::rpc_call::SendRequest); this adds what
//! the outbox needs to account for each answer: the events of every line.

use hawkeye_protocol::rpc_call::SendRequest;

use super::outbox::Message;
use crate::pending::Pending;

/// The smallest `max_message_bytes` honoured.
pub(crate) const MIN_MESSAGE_BYTES: usize = 1024;

/// Buffers start at most this large: a bound of megabytes should not
/// allocate megabytes for a few lines.
const MAX_INITIAL_CAPACITY: usize = 64 * 1024;

/// Empties `pending` into requests, numbered by `next_id`; returns them
/// and the number of metric lines they carry.
pub(crate) fn render(
    pending: &mut Pending,
    mut next_id: impl FnMut() -> u64,
    max_message_bytes: usize,
) -> (Vec<Message>, u64) {
    let max = max_message_bytes.max(MIN_MESSAGE_BYTES);
    let mut messages = Vec::new();
    let mut current: Option<Building> = None;
    let mut lines = 0u64;
    pending.drain_lines(|line, events| {
        lines += 1;
        if let Some(b) = current.as_mut() {
            if b.request.push(line, max) {
                b.carries(events);
                return;
            }
            messages.extend(current.take().map(Building::finish));
        }
        let mut b = Building::new(next_id(), max);
        // The first line of a request is always taken.
        b.request.push(line, max);
        b.carries(events);
        current = Some(b);
    });
    messages.extend(current.map(Building::finish));
    (messages, lines)
}

/// A request being filled, with the events of each of its lines.
struct Building {
    request: SendRequest,
    line_events: Vec<u64>,
    events: u64,
}

impl Building {
    fn new(id: u64, max: usize) -> Building {
        Building {
            request: SendRequest::new(id, max.min(MAX_INITIAL_CAPACITY)),
            line_events: Vec::new(),
            events: 0,
        }
    }

    fn carries(&mut self, events: u64) {
        self.line_events.push(events);
        self.events += events;
    }

    fn finish(self) -> Message {
        Message {
            id: self.request.id(),
            bytes: self.request.finish(),
            line_events: self.line_events,
            events: self.events,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::{Observation, Sample};
    use crate::series::SeriesBuilder;
    use hawkeye_protocol::jsonrpc::{method, parse_incoming, Incoming, LineText};

    /// The metric lines of a request, read as the server reads them.
    fn lines_of(m: &Message) -> Vec<String> {
        let text = std::str::from_utf8(&m.bytes).unwrap();
        assert!(text.ends_with('\n'));
        let Incoming::Single(Ok(request)) = parse_incoming(text.trim_end(), 1) else {
            panic!("not a request: {text}")
        };
        assert_eq!(request.method, method::SEND);
        assert_eq!(request.id.unwrap().get(), m.id.to_string());
        let lines: Vec<LineText> = serde_json::from_str(request.params.unwrap().get()).unwrap();
        lines.into_iter().map(|l| l.0.into_owned()).collect()
    }

    fn pending(series: usize, tag_bytes: usize) -> Pending {
        let builder = SeriesBuilder::default();
        let value = "v".repeat(tag_bytes);
        let mut p = Pending::default();
        for i in 0..series {
            let s = builder
                .build(&format!("m{i}"), &[("k", value.as_str())])
                .unwrap();
            p.add(Sample::Count(s.clone(), 1.0), usize::MAX);
            p.add(Sample::Count(s.clone(), 1.0), usize::MAX);
            p.add(Sample::Observe(s, Observation::Timing, 1.0), usize::MAX);
        }
        p
    }

    #[test]
    fn requests_are_bounded_numbered_and_account_for_every_event() {
        let mut p = pending(200, 30);
        let events = p.events();
        let mut id = 10;
        let (messages, lines) = render(
            &mut p,
            || {
                id += 1;
                id
            },
            2048,
        );
        assert!(p.is_empty());
        assert!(messages.len() > 1, "{} requests", messages.len());
        assert_eq!(lines, 400);
        let ids: Vec<u64> = messages.iter().map(|m| m.id).collect();
        assert_eq!(ids, (11..11 + messages.len() as u64).collect::<Vec<_>>());
        let mut read = 0;
        for m in &messages {
            assert!(m.bytes.len() <= 2048, "{}", m.bytes.len());
            assert_eq!(lines_of(m).len(), m.line_events.len());
            assert_eq!(m.line_events.iter().sum::<u64>(), m.events);
            read += m.events;
        }
        assert_eq!(read, events, "every event is in exactly one request");
    }

    #[test]
    fn a_line_over_the_bound_goes_alone_and_the_bound_has_a_floor() {
        let mut p = pending(3, 3000);
        let (messages, _) = render(&mut p, || 1, 10);
        // 6 lines of over 3000 bytes: each alone, despite a bound of 10
        // (raised to MIN_MESSAGE_BYTES).
        assert_eq!(messages.len(), 6);
        assert!(messages.iter().all(|m| lines_of(m).len() == 1));

        let mut p = pending(20, 0);
        let (messages, _) = render(&mut p, || 1, 10);
        assert!(messages.iter().all(|m| m.bytes.len() <= MIN_MESSAGE_BYTES));
        assert!(messages.iter().any(|m| lines_of(m).len() > 1));
    }

    #[test]
    fn nothing_held_is_no_request() {
        let (messages, lines) = render(&mut Pending::default(), || 1, 4096);
        assert!(messages.is_empty());
        assert_eq!(lines, 0);
    }
}

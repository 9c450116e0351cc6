//! The `metric.send` requests written (or about to be) and not answered
//! yet: what a flush waits for, and what goes again on the next connection.
//! Pure: the background task does the I/O and the counting.
//!
//! Each request is confirmed by its own answer (docs/client.md): an
//! answered request leaves the outbox whatever the answer said; the others
//! are written again, oldest first, after a reconnect. Past `max_bytes` the
//! oldest are dropped, so an outage costs bounded memory.

use std::collections::VecDeque;

/// One `metric.send` request, kept until the server answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Message {
    pub(crate) id: u64,
    /// The whole request line, newline included.
    pub(crate) bytes: Vec<u8>,
    /// Events carried by each metric line, by index in the request.
    pub(crate) line_events: Vec<u64>,
    /// Their sum.
    pub(crate) events: u64,
}

#[derive(Debug)]
pub(crate) struct Outbox {
    /// Oldest first; ids increase.
    messages: VecDeque<Message>,
    bytes: usize,
    max_bytes: usize,
    next_id: u64,
}

impl Outbox {
    pub(crate) fn new(max_bytes: usize) -> Outbox {
        Outbox {
            messages: VecDeque::new(),
            bytes: 0,
            max_bytes,
            next_id: 1,
        }
    }

    /// An id for a new request.
    pub(crate) fn take_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// The id of the newest request made (0 before the first).
    pub(crate) fn last_id(&self) -> u64 {
        self.next_id - 1
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// Requests not answered.
    pub(crate) fn len(&self) -> usize {
        self.messages.len()
    }

    /// Events in the requests not answered.
    pub(crate) fn events(&self) -> u64 {
        self.messages.iter().map(|m| m.events).sum()
    }

    /// Keeps `message` (ids must increase). When the outbox then holds more
    /// than `max_bytes`, the oldest requests are dropped, never the newest,
    /// and returned for the caller to count.
    pub(crate) fn push(&mut self, message: Message) -> Vec<Message> {
        debug_assert!(self.messages.back().is_none_or(|m| m.id < message.id));
        self.bytes += message.bytes.len();
        self.messages.push_back(message);
        let mut dropped = Vec::new();
        while self.bytes > self.max_bytes && self.messages.len() > 1 {
            dropped.extend(self.pop_front());
        }
        dropped
    }

    /// The server answered request `id`: it leaves (`None` when it is not
    /// here: answered before, dropped for the bound, or never made).
    pub(crate) fn answered(&mut self, id: u64) -> Option<Message> {
        let pos = self.messages.iter().position(|m| m.id == id)?;
        let message = self.messages.remove(pos)?;
        self.bytes -= message.bytes.len();
        Some(message)
    }

    /// The server refused a request as longer than its line limit, an
    /// answer without id: it is the oldest not answered (answers come in
    /// order, and the server closes the connection after it). It leaves.
    pub(crate) fn refuse_oldest(&mut self) -> Option<Message> {
        self.pop_front()
    }

    /// Whether every request up to `id` has left (answered or dropped).
    pub(crate) fn settled_through(&self, id: u64) -> bool {
        self.messages.front().is_none_or(|m| m.id > id)
    }

    /// The requests from `id` on, as one write: the new ones after a
    /// render, every one (`bytes_from(0)`) on a new connection.
    pub(crate) fn bytes_from(&self, id: u64) -> Vec<u8> {
        let kept = self.messages.iter().filter(|m| m.id >= id);
        let mut bytes = Vec::with_capacity(kept.clone().map(|m| m.bytes.len()).sum());
        for m in kept {
            bytes.extend_from_slice(&m.bytes);
        }
        bytes
    }

    fn pop_front(&mut self) -> Option<Message> {
        let message = self.messages.pop_front()?;
        self.bytes -= message.bytes.len();
        Some(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request of `len` bytes carrying `events` events in one line.
    fn message(outbox: &mut Outbox, len: usize, events: u64) -> Message {
        let id = outbox.take_id();
        let mut bytes = format!("{id}:").into_bytes();
        bytes.resize(len, b'.');
        Message {
            id,
            bytes,
            line_events: vec![events],
            events,
        }
    }

    fn ids(outbox: &Outbox) -> Vec<u64> {
        outbox.messages.iter().map(|m| m.id).collect()
    }

    #[test]
    fn answered_requests_leave_and_the_rest_is_what_goes_again() {
        let mut o = Outbox::new(1 << 20);
        for events in [1, 2, 3, 4] {
            let m = message(&mut o, 10, events);
            assert!(o.push(m).is_empty());
        }
        assert_eq!(o.last_id(), 4);
        assert_eq!(o.events(), 10);
        assert_eq!(o.answered(2).map(|m| m.events), Some(2));
        assert_eq!(o.answered(2), None, "an answer counts once");
        assert_eq!(o.answered(99), None, "an unknown id is ignored");
        assert_eq!(ids(&o), [1, 3, 4]);
        // After a reconnect: exactly the unanswered ones, oldest first.
        let again = String::from_utf8(o.bytes_from(0)).unwrap();
        assert!(again.starts_with("1:") && again.contains("3:") && again.contains("4:"));
        assert!(!again.contains("2:"), "{again}");
        assert_eq!(again.len(), 30);
        // After a render: only the new ones.
        assert_eq!(o.bytes_from(4).len(), 10);
        assert_eq!(o.len(), 3);
    }

    #[test]
    fn a_flush_is_done_when_everything_up_to_its_id_has_left() {
        let mut o = Outbox::new(1 << 20);
        assert!(o.settled_through(0), "nothing made: nothing to wait for");
        for _ in 0..3 {
            let m = message(&mut o, 10, 1);
            o.push(m);
        }
        assert!(!o.settled_through(2));
        o.answered(2);
        assert!(!o.settled_through(2), "1 is still out");
        o.answered(1);
        assert!(o.settled_through(2));
        assert!(!o.settled_through(3));
        o.answered(3);
        assert!(o.settled_through(u64::MAX));
        assert!(o.is_empty());
    }

    #[test]
    fn the_bound_drops_the_oldest_but_never_the_newest() {
        let mut o = Outbox::new(25);
        for _ in 0..2 {
            let m = message(&mut o, 10, 1);
            assert!(o.push(m).is_empty());
        }
        let m = message(&mut o, 10, 1);
        let dropped = o.push(m);
        assert_eq!(dropped.iter().map(|m| m.id).collect::<Vec<_>>(), [1]);
        assert_eq!(ids(&o), [2, 3]);
        // One request larger than the whole bound is still kept, alone.
        let m = message(&mut o, 100, 7);
        let dropped = o.push(m);
        assert_eq!(dropped.iter().map(|m| m.id).collect::<Vec<_>>(), [2, 3]);
        assert_eq!(ids(&o), [4]);
        assert_eq!(o.events(), 7);
        assert!(
            o.settled_through(3),
            "dropped requests are no longer waited for"
        );
    }

    #[test]
    fn a_request_refused_as_too_long_is_the_oldest() {
        let mut o = Outbox::new(1 << 20);
        for events in [5, 6] {
            let m = message(&mut o, 10, events);
            o.push(m);
        }
        assert_eq!(o.refuse_oldest().map(|m| (m.id, m.events)), Some((1, 5)));
        assert_eq!(ids(&o), [2]);
        assert_eq!(o.bytes_from(0).len(), 10);
        o.refuse_oldest();
        assert_eq!(o.refuse_oldest(), None);
        assert_eq!(o.bytes_from(0), Vec::<u8>::new());
    }
}

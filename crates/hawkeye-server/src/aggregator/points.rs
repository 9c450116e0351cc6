//! The aggregates waiting for the next cut: one [`Point`] per series and
//! second, in one vector shared by every series. A series links its points
//! (nearly always one or two) from its `head`; a cut point goes on a free
//! list and is reused, so the vector is a buffer that grows to the most
//! points ever waiting (bounded by `HAWKEYE_MAX_BUFFERED`) and allocates
//! nothing per flush. A counter's point holds its sum inline in 32 bytes;
//! other kinds box their numbers, as `Aggregate` already boxes sketches and
//! sets.

use std::collections::HashSet;

use hawkeye_store::aggregate::{Aggregate, DistributionStats, GaugeStats};

/// "No point": the end of a list.
pub(super) const NONE: u32 = u32::MAX;

/// An aggregate as a point holds it: 16 bytes, where `Aggregate` takes 48
/// for the sake of a gauge's five numbers.
enum Held {
    Counter(f64),
    Gauge(Box<GaugeStats>),
    Distribution(Box<DistributionStats>),
    // Boxed as in `Aggregate`: moved in and out of it without allocating.
    #[allow(clippy::box_collection)]
    Set(Box<HashSet<String>>),
}

impl Held {
    fn new(agg: Aggregate) -> Held {
        match agg {
            Aggregate::Counter(sum) => Held::Counter(sum),
            Aggregate::Gauge(g) => Held::Gauge(Box::new(g)),
            Aggregate::Distribution(d) => Held::Distribution(d),
            Aggregate::Set(s) => Held::Set(s),
        }
    }

    fn into_aggregate(self) -> Aggregate {
        match self {
            Held::Counter(sum) => Aggregate::Counter(sum),
            Held::Gauge(g) => Aggregate::Gauge(*g),
            Held::Distribution(d) => Aggregate::Distribution(d),
            Held::Set(s) => Aggregate::Set(s),
        }
    }
}

struct Point {
    second: i64,
    held: Held,
    /// The series' next point, or the next free point.
    next: u32,
    /// Events (values of taken lines) in this aggregate. A point holds one
    /// second: no series takes 2^32 events in a second.
    events: u32,
}

#[derive(Default)]
pub(super) struct Points {
    points: Vec<Point>,
    free: Option<u32>,
}

impl Points {
    /// The point of second `second` in the list starting at `head`.
    pub fn find(&self, head: u32, second: i64) -> Option<u32> {
        let mut p = head;
        while p != NONE {
            let point = &self.points[p as usize];
            if point.second == second {
                return Some(p);
            }
            p = point.next;
        }
        None
    }

    /// Adds a point at the front of the list starting at `head`.
    pub fn push(&mut self, head: &mut u32, second: i64, agg: Aggregate) -> u32 {
        let point = Point {
            second,
            held: Held::new(agg),
            next: *head,
            events: 0,
        };
        let p = match self.free {
            Some(p) => {
                let slot = &mut self.points[p as usize];
                self.free = (slot.next != NONE).then_some(slot.next);
                *slot = point;
                p
            }
            None => {
                self.points.push(point);
                (self.points.len() - 1) as u32
            }
        };
        *head = p;
        p
    }

    /// Removes the first point of the list at `head` (the last pushed),
    /// returning its aggregate.
    pub fn pop(&mut self, head: &mut u32) -> Option<Aggregate> {
        if *head == NONE {
            return None;
        }
        let p = *head;
        *head = self.points[p as usize].next;
        Some(self.release(p).0)
    }

    /// Takes every point of the list at `head`, oldest first, leaving it
    /// empty. Returns the events they held.
    pub fn take_all(&mut self, head: &mut u32, into: &mut Vec<(i64, Aggregate)>) -> u64 {
        let start = into.len();
        let mut events = 0;
        while *head != NONE {
            let p = *head;
            *head = self.points[p as usize].next;
            let second = self.points[p as usize].second;
            let (agg, n) = self.release(p);
            into.push((second, agg));
            events += u64::from(n);
        }
        into[start..].reverse();
        events
    }

    /// Frees point `p`, returning what it held.
    fn release(&mut self, p: u32) -> (Aggregate, u32) {
        let point = &mut self.points[p as usize];
        let held = std::mem::replace(&mut point.held, Held::Counter(0.0));
        point.next = self.free.unwrap_or(NONE);
        self.free = Some(p);
        (held.into_aggregate(), point.events)
    }

    /// Runs `f` on point `p`'s aggregate, which it may change.
    pub fn with<R>(&mut self, p: u32, f: impl FnOnce(&mut Aggregate) -> R) -> R {
        let held = &mut self.points[p as usize].held;
        if let Held::Counter(sum) = held {
            // The common case, on a copy: nothing to move.
            let mut agg = Aggregate::Counter(*sum);
            let r = f(&mut agg);
            if let Aggregate::Counter(after) = agg {
                *sum = after;
            }
            return r;
        }
        if let Held::Gauge(g) = held {
            // Copied in and out: a gauge keeps its box.
            let mut agg = Aggregate::Gauge((**g).clone());
            let r = f(&mut agg);
            if let Aggregate::Gauge(after) = agg {
                **g = after;
            }
            return r;
        }
        // Moved out and back: no allocation for the others either.
        let mut agg = std::mem::replace(held, Held::Counter(0.0)).into_aggregate();
        let r = f(&mut agg);
        *held = Held::new(agg);
        r
    }

    /// Replaces point `p`'s aggregate (an undo).
    pub fn set(&mut self, p: u32, agg: Aggregate) {
        self.points[p as usize].held = Held::new(agg);
    }

    /// Adds `n` events to point `p`'s count (or takes them back, negative).
    pub fn count_events(&mut self, p: u32, n: i64) {
        let events = &mut self.points[p as usize].events;
        *events = (i64::from(*events) + n).clamp(0, i64::from(u32::MAX)) as u32;
    }

    /// Bytes of the point vector (capacity), without what boxed aggregates
    /// hold.
    pub fn heap_bytes(&self) -> usize {
        self.points.capacity() * std::mem::size_of::<Point>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_point_is_32_bytes() {
        assert_eq!(std::mem::size_of::<Point>(), 32);
    }

    #[test]
    fn cut_points_are_reused() {
        let mut points = Points::default();
        let (mut a, mut b) = (NONE, NONE);
        points.push(&mut a, 10, Aggregate::Counter(1.0));
        points.push(&mut a, 11, Aggregate::Counter(2.0));
        points.push(&mut b, 10, Aggregate::Gauge(GaugeStats::new(3.0)));
        let p = points.find(a, 10).unwrap();
        points.with(p, |agg| *agg = Aggregate::Counter(5.0));
        points.count_events(p, 2);
        let mut out = Vec::new();
        assert_eq!(points.take_all(&mut a, &mut out), 2);
        assert_eq!(
            out,
            [(10, Aggregate::Counter(5.0)), (11, Aggregate::Counter(2.0))]
        );
        assert_eq!(a, NONE);
        points.push(&mut a, 12, Aggregate::Counter(1.0));
        points.push(&mut a, 13, Aggregate::Counter(1.0));
        assert_eq!(points.points.len(), 3, "the two freed points are reused");
        assert_eq!(points.pop(&mut a), Some(Aggregate::Counter(1.0)));
        assert_eq!(points.find(a, 13), None);
        assert!(points.find(a, 12).is_some());
        let q = points.find(b, 10).unwrap();
        points.with(q, |agg| {
            if let Aggregate::Gauge(g) = agg {
                g.observe(4.0)
            }
        });
        out.clear();
        points.take_all(&mut b, &mut out);
        let Aggregate::Gauge(g) = &out[0].1 else {
            panic!("{out:?}")
        };
        assert_eq!((g.last, g.count), (4.0, 2.0));
    }
}

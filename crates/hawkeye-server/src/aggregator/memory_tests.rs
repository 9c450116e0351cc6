//! What a series costs the aggregator, counted rather than timed: the
//! allocations a new series keeps (by a counting allocator, per thread, so
//! that tests running beside these do not count) and the bytes its tables
//! hold per series, against the sizes of its records.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::mem::size_of;

use hawkeye_protocol::parse_line;

use super::{Aggregator, CutQueue};

struct Counting;

thread_local! {
    /// Allocations made less allocations freed, on this thread.
    static LIVE: Cell<i64> = const { Cell::new(0) };
}

fn count(n: i64) {
    // `try_with`: a thread being torn down still allocates.
    let _ = LIVE.try_with(|c| c.set(c.get() + n));
}

fn live_allocations() -> i64 {
    LIVE.with(Cell::get)
}

// SAFETY: every call is passed to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(1);
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(1);
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-1);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const NOW: i64 = 1_700_000_000;
const SERIES: usize = 100_000;

fn counter_lines(from: usize, to: usize) -> Vec<String> {
    (from..to)
        .map(|i| format!("bench.series:1|c|#id:{i}"))
        .collect()
}

fn apply_all(a: &mut Aggregator, texts: &[String], now: i64) {
    for text in texts {
        a.apply(&parse_line(text).unwrap(), now).unwrap();
    }
}

/// Cuts and "writes" everything waiting, as the flusher does.
fn flush(a: &mut Aggregator) -> usize {
    let mut queue = CutQueue::default();
    a.take_dirty(&mut queue);
    queue.sort();
    let mut series = 0;
    while !queue.is_empty() {
        let cut = a.cut(&mut queue, 1, 1);
        series += cut.batch.series.len();
        a.written(&cut);
    }
    series
}

#[test]
fn a_new_series_keeps_no_allocation_of_its_own() {
    let texts = counter_lines(0, SERIES);
    let lines: Vec<_> = texts.iter().map(|t| parse_line(t).unwrap()).collect();
    let mut a = Aggregator::new(SERIES, usize::MAX, 3600);
    let before = live_allocations();
    for line in &lines {
        a.apply(line, NOW).unwrap();
    }
    let kept = live_allocations() - before;
    // Only the tables are allocated (a dozen vectors and tables): no name,
    // key or aggregate of its own per series.
    assert!(kept < 20, "{kept} allocations kept for {SERIES} new series");
    assert_eq!(a.series_count(), SERIES);
    let before = live_allocations();
    assert_eq!(flush(&mut a), SERIES);
    // (The dirty list goes to the flush's queue, dropped here.)
    assert!(live_allocations() <= before, "a flush keeps nothing");
}

#[test]
fn the_bytes_held_per_series_follow_the_records_sizes() {
    let texts = counter_lines(0, SERIES);
    let mut a = Aggregator::new(SERIES, usize::MAX, 3600);
    apply_all(&mut a, &texts, NOW);
    assert_eq!(flush(&mut a), SERIES);
    let tag_bytes: usize = (0..SERIES).map(|i| format!("id={i}").len()).sum();
    // Per series: its state and key (16 + 16 bytes), a waiting point (32),
    // a listing in the dirty list (8), a table entry (5 bytes, at least
    // one in eight buckets empty); each vector may be up to twice as long
    // as its contents.
    assert_eq!(size_of::<super::state::State>(), 16);
    let per_series = size_of::<super::state::State>() + 16 + 32 + 8 + 5 * 8 / 7;
    let bound = 2 * (SERIES * per_series + tag_bytes) + 64 * 1024;
    let held = a.heap_bytes();
    assert!(held <= bound, "{held} bytes held, bound {bound}");
    assert!(held >= SERIES * (size_of::<super::state::State>() + 16) + tag_bytes);

    // Every series again, flushed again: nothing grows (buffers reused).
    apply_all(&mut a, &texts, NOW + 1);
    assert_eq!(flush(&mut a), SERIES);
    assert_eq!(a.heap_bytes(), held, "the second flush reuses the first's");

    // A whole new population after the old one is forgotten: the tables
    // hold what is held now, not every series ever seen.
    assert_eq!(a.forget_idle(NOW + 3602), SERIES);
    let texts = counter_lines(SERIES, 2 * SERIES);
    apply_all(&mut a, &texts, NOW + 3602);
    flush(&mut a);
    assert_eq!(a.series.slots(), SERIES, "the slots are reused");
    let new_tag_bytes: usize = (SERIES..2 * SERIES).map(|i| format!("id={i}").len()).sum();
    let bound = 2 * (SERIES * per_series + new_tag_bytes) + 64 * 1024;
    let held = a.heap_bytes();
    assert!(held <= bound, "{held} bytes held, bound {bound}");
}

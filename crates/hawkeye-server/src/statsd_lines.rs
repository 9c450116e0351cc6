//! Taking runs of plain statsd/DogStatsD lines separated by `\n`, as every
//! listener that answers nothing receives them: the Unix datagram socket,
//! UDP, TCP and a plain-line client of the stream socket. What is refused
//! is counted in `server.stats` and logged at warn level, at most once per
//! listener per `HAWKEYE_REJECT_LOG_INTERVAL` (see [`crate::reject_log`]).

use hawkeye_protocol::line::payload_lines;
use hawkeye_protocol::{parse_line_with, MetricLine};

use crate::ingest;
use crate::pace::Pacer;
pub(crate) use crate::reject_log::Listener;
use crate::reject_log::RejectLog;
use crate::shared::Shared;
use crate::stats::Stats;

/// Lines taken per lock hold.
const CHUNK_LINES: usize = 512;

/// Takes the lines of `payload` (whole lines; a last one without its
/// newline is a line too).
pub(crate) async fn take_lines(
    shared: &Shared,
    payload: &[u8],
    listener: Listener,
    pacer: &mut Pacer,
) {
    let stats = &shared.stats;
    let log = shared.reject_log(listener);
    let limits = shared.config.dgram_line_limits();
    let mut chunk: Vec<(u32, MetricLine<'_>)> = Vec::with_capacity(CHUNK_LINES.min(64));
    let mut chunk_bytes = 0;
    for line in payload.split(|b| *b == b'\n') {
        chunk_bytes += line.len() + 1;
        let Ok(text) = std::str::from_utf8(line) else {
            // As on the stream socket: refused, never altered.
            Stats::bump(&stats.lines_rejected);
            log.rejected_bytes(&"not valid UTF-8", line);
            continue;
        };
        // One line of the payload (blank ones skipped, `\r` trimmed).
        for text in payload_lines(text) {
            match parse_line_with(text, &limits) {
                Ok(parsed) => chunk.push((chunk.len() as u32, parsed)),
                Err(e) => {
                    stats.line_refused(&e);
                    log.rejected(&e, text);
                }
            }
        }
        if chunk.len() >= CHUNK_LINES {
            take(shared, &mut chunk, log);
            pacer.spent(chunk_bytes).await;
            chunk_bytes = 0;
        }
    }
    take(shared, &mut chunk, log);
    pacer.spent(chunk_bytes).await;
}

/// Takes a chunk of lines, each numbered by its place in the chunk.
fn take(shared: &Shared, chunk: &mut Vec<(u32, MetricLine<'_>)>, log: &RejectLog) {
    ingest::ingest_each(shared, chunk, |i, why| {
        log.rejected(&why, chunk[i as usize].1.name);
    });
    chunk.clear();
}

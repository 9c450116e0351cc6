//! The statsd/DogStatsD datagram socket: each datagram holds one or more
//! metric lines separated by `\n`. Nothing is answered; rejected lines are
//! counted in `server.stats` and logged at debug level.

use std::sync::Arc;

use hawkeye_protocol::parse_payload;
use tokio::net::UnixDatagram;
use tokio::sync::watch;
use tracing::debug;

use crate::shared::Shared;

pub(crate) async fn serve(
    shared: Arc<Shared>,
    socket: UnixDatagram,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; shared.config.dgram_max_bytes];
    loop {
        let n = tokio::select! {
            r = socket.recv(&mut buf) => match r {
                Ok(n) => n,
                Err(e) => {
                    debug!(error = %e, "datagram receive failed");
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let mut payload = &buf[..n];
        if n == buf.len() {
            // Probably cut short by the buffer: the last line may have lost
            // its end (`@0.25` read as `@0.2`), so it is not taken.
            let keep = memchr::memrchr(b'\n', payload).map_or(0, |i| i + 1);
            payload = &payload[..keep];
            shared
                .stats
                .lines_rejected
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            debug!(
                bytes = n,
                "datagram filled the buffer (HAWKEYE_DGRAM_MAX_BYTES); its last line is dropped"
            );
        }
        let text = String::from_utf8_lossy(payload);
        let ingested = shared.ingest(parse_payload(&text));
        for (i, why) in &ingested.rejected {
            debug!(line = i, error = %why, "datagram line rejected");
        }
    }
}

//! Waiting for the servers to flush before a check: every server writes its
//! watermark (the newest second it has completely flushed) with each flush,
//! and a check of the window ending at second `e` waits until the oldest
//! live server's watermark reaches `e`, or at most `HAWKEYE_WATERMARK_WAIT`.
//! docs/cluster.md, "Watermark".

use std::sync::Arc;
use std::time::Duration;

use hawkeye_store::Store;
use tokio::time::Instant;

use crate::state::UnixMillis;

/// How often the watermark is read again while waiting.
const POLL: Duration = Duration::from_millis(100);

pub(crate) struct FlushWait {
    store: Arc<dyn Store>,
    /// `evaluation_delay`: a check of the slot starting at `s` runs at `s +
    /// delay_ms`.
    delay_ms: u64,
    max_wait: Duration,
    /// The last check went ahead without the servers (logged once).
    lagging: bool,
}

impl FlushWait {
    pub(crate) fn new(store: Arc<dyn Store>, delay: Duration, max_wait: Duration) -> FlushWait {
        FlushWait {
            store,
            delay_ms: delay.as_millis() as u64,
            max_wait,
            lagging: false,
        }
    }

    /// The newest second a check due at `now` reads: the last whole second
    /// before its slot (see `engine::plan`); every slot due at `now` starts
    /// at or before `now - delay`.
    pub(crate) fn needed(&self, now: UnixMillis) -> i64 {
        (now.saturating_sub(self.delay_ms) / 1000) as i64 - 1
    }

    /// Returns once every live server has flushed what the checks due at
    /// `now` read, or none reports a watermark, or the store cannot say
    /// (the check then meets the store's failure itself), or after the
    /// longest wait (logged: the check may see a server's data incomplete).
    pub(crate) async fn wait(&mut self, now: UnixMillis) {
        let needed = self.needed(now);
        let started = Instant::now();
        loop {
            let behind = match self.store.watermark().await {
                Ok(Some(w)) if w.second < needed => w,
                Ok(_) | Err(_) => break,
            };
            let waited = started.elapsed();
            if waited >= self.max_wait {
                if !self.lagging {
                    tracing::warn!(
                        needed,
                        watermark = behind.second,
                        servers = behind.servers,
                        waited = ?waited,
                        "a server has not flushed the window a check reads within HAWKEYE_WATERMARK_WAIT; checking anyway (its latest events may be missing)"
                    );
                }
                self.lagging = true;
                return;
            }
            tokio::time::sleep(POLL.min(self.max_wait - waited)).await;
        }
        if self.lagging {
            tracing::info!("the servers' watermark caught up; checks wait for it again");
            self.lagging = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hawkeye_store::MemoryStore;

    const LIVE: Duration = Duration::from_secs(3600);
    /// 2026-01-01T00:00:10.200Z: the checks due read up to second ..09.
    const NOW: UnixMillis = 1_767_225_610_200;
    const NEEDED: i64 = 1_767_225_609;

    fn setup() -> (Arc<MemoryStore>, FlushWait) {
        let store = Arc::new(MemoryStore::default());
        let wait = FlushWait::new(
            store.clone(),
            Duration::from_millis(200),
            Duration::from_secs(10),
        );
        (store, wait)
    }

    #[test]
    fn a_check_needs_the_second_before_its_slot() {
        let (_, wait) = setup();
        assert_eq!(wait.needed(NOW), NEEDED);
        assert_eq!(wait.needed(NOW + 999), NEEDED);
        assert_eq!(wait.needed(NOW + 1000), NEEDED + 1);
    }

    #[tokio::test(start_paused = true)]
    async fn no_server_or_servers_ahead_means_no_wait() {
        let (store, mut wait) = setup();
        let started = Instant::now();
        wait.wait(NOW).await;
        store.put_watermark(1, NEEDED, LIVE).await.unwrap();
        store.put_watermark(2, NEEDED + 5, LIVE).await.unwrap();
        wait.wait(NOW).await;
        assert_eq!(started.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_server_is_waited_for_until_it_flushed() {
        let (store, mut wait) = setup();
        store.put_watermark(1, NEEDED + 1, LIVE).await.unwrap();
        store.put_watermark(2, NEEDED - 1, LIVE).await.unwrap();
        let started = Instant::now();
        let catch_up = {
            let store = store.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(3)).await;
                store.put_watermark(2, NEEDED, LIVE).await.unwrap();
            })
        };
        wait.wait(NOW).await;
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_secs(3) && waited < Duration::from_secs(10),
            "{waited:?}"
        );
        assert!(!wait.lagging);
        catch_up.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_server_that_never_catches_up_is_waited_for_at_most_the_bound() {
        let (store, mut wait) = setup();
        store.put_watermark(1, NEEDED - 30, LIVE).await.unwrap();
        let started = Instant::now();
        wait.wait(NOW).await;
        assert_eq!(started.elapsed(), Duration::from_secs(10));
        assert!(wait.lagging);
        // Once it catches up, checks wait for it again.
        store.put_watermark(1, NEEDED, LIVE).await.unwrap();
        wait.wait(NOW).await;
        assert!(!wait.lagging);
    }
}

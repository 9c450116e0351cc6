//! The well-behaved client every bound test runs beside the hostile ones:
//! it sends one event per `metric.send` call, reads every answer, and must
//! never be refused; what it was answered for must come out exact.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::Client;

pub struct Steady {
    stop: Arc<AtomicBool>,
    /// Events answered as taken so far.
    pub answered: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<u64>,
    pub metric: String,
}

impl Steady {
    /// Starts sending `<metric>:1|c` over its own connection to `socket`.
    pub fn start(socket: PathBuf, metric: &str) -> Steady {
        let stop = Arc::new(AtomicBool::new(false));
        let answered = Arc::new(AtomicU64::new(0));
        let line = format!("{metric}:1|c");
        let (s, a) = (stop.clone(), answered.clone());
        let task = tokio::spawn(async move {
            let mut c = Client::connect(&socket).await;
            let mut sent = 0;
            while !s.load(Ordering::Relaxed) || sent < 20 {
                let r = c.call("metric.send", json!([line])).await;
                assert_eq!(r["result"], json!({"accepted": 1, "rejected": []}), "{r}");
                sent += 1;
                a.store(sent, Ordering::Relaxed);
                // A well-behaved client sends at a pace, not in a spin.
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            sent
        });
        Steady {
            stop,
            answered,
            task,
            metric: metric.to_string(),
        }
    }

    /// Waits until it has been answered at least once.
    pub async fn running(&self) {
        while self.answered.load(Ordering::Relaxed) == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Stops it; how many events it was answered for.
    pub async fn finish(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.task
            .await
            .expect("the steady client was never refused")
    }

    /// Stops it and checks, through `metric.query`, that every event it was
    /// answered for is counted, exactly.
    pub async fn finish_exact(self, socket: &std::path::Path) -> u64 {
        let metric = self.metric.clone();
        let sent = self.finish().await;
        let mut c = Client::connect(socket).await;
        let total = c.query(json!({"metric": metric, "window": "5m"})).await;
        assert_eq!(total, json!(sent as f64), "the steady client's count");
        sent
    }
}

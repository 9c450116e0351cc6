//! What the status endpoint reads, and how: the store, the monitors the
//! agent runs and its counters; the rows of the page and of `/api/alerts`.

use std::sync::{Arc, Mutex, RwLock};

use hawkeye_mail::QueueStats;
use hawkeye_store::{Store, StoreError};

use super::alerts::{alert_rows, AlertRow};
use crate::engine::EngineStats;
use crate::monitors::MonitorsFile;
use crate::silence;
use crate::state_key::{self, KeyIndex};

/// What the endpoint reads: the store, the monitors the agent runs (kept
/// current by reloads), and the agent's counters.
#[derive(Clone)]
pub struct StatusSource {
    pub store: Arc<dyn Store>,
    pub monitors: Arc<RwLock<MonitorsFile>>,
    pub service: String,
    pub environment: String,
    pub engine: Arc<Mutex<EngineStats>>,
    pub mail: Arc<Mutex<QueueStats>>,
}

impl StatusSource {
    pub(super) fn monitors(&self) -> MonitorsFile {
        // A panic elsewhere while holding the lock leaves a whole file.
        self.monitors
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Every stored state of this service and environment, as rows.
    pub(super) async fn rows(
        &self,
        file: &MonitorsFile,
        now_ms: u64,
    ) -> Result<Vec<AlertRow>, StoreError> {
        let prefix = state_key::prefix(&self.service, &self.environment);
        let states = self.store.alert_states(&prefix).await?;
        let (silences, _) = silence::parse_all(&self.store.silences(now_ms).await?);
        let index = KeyIndex::new(file, &self.service, &self.environment);
        Ok(alert_rows(file, &index, &states, &silences, now_ms))
    }
}

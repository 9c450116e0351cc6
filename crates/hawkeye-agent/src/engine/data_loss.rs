//! The store's marker tells "the store lost its data" (Redis restarted
//! without persistence) from "nothing happened yet": it is set once per life
//! of the store's data, so a marker that changed under a running agent means
//! every alert state, unsent mail and silence is gone. The agent says so,
//! and writes back the states it last saw, so an episode in progress goes
//! on (no second firing mail). `docs/alerts.md`, "When the store loses its
//! data".

use std::collections::HashMap;

use hawkeye_store::AlertSnapshot;

use super::{Engine, TickReport};

impl Engine {
    /// Tells "the store lost its data" (its marker changed) from "nothing
    /// happened yet", and after a loss writes back the states this engine
    /// knew, so an episode in progress does not start again (no second
    /// firing mail).
    pub(super) async fn check_marker(
        &mut self,
        keys: &[String],
        snapshot: &mut AlertSnapshot,
        report: &mut TickReport,
    ) {
        let lost = match &self.marker {
            None => false,
            Some(m) => *m != snapshot.marker,
        };
        self.marker = Some(snapshot.marker.clone());
        if lost {
            self.stats.data_losses += 1;
            report.data_loss = true;
            let restored = self.restore(keys, snapshot).await;
            tracing::error!(
                restored,
                "the store lost its data (its marker changed): alert states, mail not yet sent and silences were gone; \
                 the states this agent knew are written back. Give Redis persistence (appendonly yes) to avoid this (docs/alerts.md)"
            );
        }
        for (key, state) in keys.iter().zip(&snapshot.states) {
            match state {
                Some(s) => {
                    self.known.insert(key.clone(), s.clone());
                }
                // Most triggers have no state, and none known: no lookup.
                None if self.known.is_empty() => {}
                None => {
                    self.known.remove(key);
                }
            }
        }
    }

    /// Writes back every state this engine knew that the store no longer
    /// has: those of the triggers read now (`keys`, whose snapshot is
    /// updated) and those of monitors not due at this tick, which would
    /// otherwise start a new episode at their next check. Each write is
    /// conditional on the key being absent, so a state another agent
    /// restored or wrote first is kept.
    async fn restore(&mut self, keys: &[String], snapshot: &mut AlertSnapshot) -> usize {
        let read: HashMap<&str, usize> = keys
            .iter()
            .enumerate()
            .map(|(n, k)| (k.as_str(), n))
            .collect();
        let mut restored = 0;
        for (key, known) in &self.known {
            let at = read.get(key.as_str()).copied();
            if at.is_some_and(|n| snapshot.states[n].is_some()) {
                continue;
            }
            let commit = self.first_write(key, known.clone());
            if let Ok(true) = self.store.commit_alert(&commit).await {
                if let Some(n) = at {
                    snapshot.states[n] = Some(known.clone());
                }
                restored += 1;
            }
        }
        restored
    }
}

//! Range reads ([`crate::range`]): the first round trip finds the series of
//! the whole range once, as a window read's does; each step is then read
//! as a window query of its own over those series, many steps per round
//! trip. A step that covers at most 10 seconds of a minute reads only its
//! own fields of the minute hash (docs/storage.md, "Reads").

use std::sync::Arc;

use super::RedisStore;
use crate::error::StoreError;
use crate::range::{points_of, RangeOutcome, RangeQuery};

/// Step series read at once: bounds the memory of a range over very many
/// series (read jobs, requests, replies); each batch is read in as few
/// round trips as a window read of as many series.
const MAX_STEP_SERIES_PER_BATCH: usize = 10_000;

impl RedisStore {
    pub(super) async fn read_range(&self, range: &RangeQuery) -> Result<RangeOutcome, StoreError> {
        let steps = match range.steps() {
            Ok(steps) => steps,
            Err(e) => return Ok(Err(e)),
        };
        let plan = match self.plan(&[range.whole()]).await?.pop() {
            Some(Ok(Some(plan))) => plan,
            Some(Ok(None)) | None => return Ok(Ok(Vec::new())),
            Some(Err(e)) => return Ok(Err(e)),
        };
        let per_batch = (MAX_STEP_SERIES_PER_BATCH / plan.series.len().max(1)).max(1);
        let mut outcomes = Vec::with_capacity(steps.len());
        for batch in steps.chunks(per_batch) {
            let plans: Vec<_> = batch.iter().map(|_| Ok(Some(Arc::clone(&plan)))).collect();
            outcomes.extend(self.read_planned(batch, &plans).await?);
        }
        Ok(points_of(&steps, outcomes))
    }
}

//! The series one [`HttpMetricsLayer`](crate::HttpMetricsLayer) writes,
//! built once when the layer is, so that a response costs no name building.

use crate::series::{SeriesBuilder, SeriesText};

/// `<prefix>.requests`, `.errors`, `.latency`, `.response.<status>` and
/// `.response.<class>xx`.
#[derive(Debug)]
pub(crate) struct HttpSeries {
    prefix: String,
    builder: SeriesBuilder,
    pub(crate) requests: SeriesText,
    pub(crate) errors: SeriesText,
    pub(crate) latency: SeriesText,
    /// `response.100` ..= `response.599`.
    statuses: Vec<SeriesText>,
    /// `response.1xx` ..= `response.5xx`.
    classes: Vec<SeriesText>,
}

const FIRST_STATUS: u16 = 100;
const LAST_STATUS: u16 = 599;

impl HttpSeries {
    /// `None` when nothing usable is left of `prefix` (see
    /// [`SeriesBuilder::build`]).
    pub(crate) fn new(builder: &SeriesBuilder, prefix: &str) -> Option<HttpSeries> {
        let prefix = prefix.trim_end_matches('.').to_string();
        let name = |suffix: &str| builder.build(&format!("{prefix}.{suffix}"), &[]);
        Some(HttpSeries {
            requests: name("requests")?,
            errors: name("errors")?,
            latency: name("latency")?,
            statuses: (FIRST_STATUS..=LAST_STATUS)
                .map(|s| name(&format!("response.{s}")))
                .collect::<Option<_>>()?,
            classes: (1..=5)
                .map(|c| name(&format!("response.{c}xx")))
                .collect::<Option<_>>()?,
            builder: builder.clone(),
            prefix,
        })
    }

    pub(crate) fn status(&self, code: u16) -> SeriesText {
        match code {
            FIRST_STATUS..=LAST_STATUS => self.statuses[usize::from(code - FIRST_STATUS)].clone(),
            _ => self
                .builder
                .build(&format!("{}.response.{code}", self.prefix), &[])
                .unwrap_or_else(|| self.errors.clone()),
        }
    }

    pub(crate) fn class(&self, code: u16) -> SeriesText {
        match code / 100 {
            c @ 1..=5 => self.classes[usize::from(c - 1)].clone(),
            c => self
                .builder
                .build(&format!("{}.response.{c}xx", self.prefix), &[])
                .unwrap_or_else(|| self.errors.clone()),
        }
    }
}

//! One generate server's request counters, as the policy client books them and as
//! `runs.jsonl`, `progress.json` and the timeline record them.

use serde::{Deserialize, Serialize};

/// One server's counters since the client was made, or over an interval (see
/// [`UrlUtilisation::since`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UrlUtilisation {
    pub url: String,
    /// Requests finished (answered or failed).
    pub requests: u64,
    /// Prompts (samples) in those requests.
    pub prompts: u64,
    /// Time with at least one request in flight.
    pub busy_ms: f64,
    /// Integral of the prompts in flight over time (prompt-milliseconds).
    pub prompt_ms: f64,
}

impl UrlUtilisation {
    /// The counters accumulated between `earlier` (a snapshot of the same server) and `self`.
    pub fn since(&self, earlier: &UrlUtilisation) -> UrlUtilisation {
        UrlUtilisation {
            url: self.url.clone(),
            requests: self.requests - earlier.requests,
            prompts: self.prompts - earlier.prompts,
            busy_ms: self.busy_ms - earlier.busy_ms,
            prompt_ms: self.prompt_ms - earlier.prompt_ms,
        }
    }

    /// Share of `wall_ms` with at least one request in flight.
    pub fn busy_share(&self, wall_ms: f64) -> f64 {
        if wall_ms > 0.0 {
            self.busy_ms / wall_ms
        } else {
            0.0
        }
    }

    /// Mean prompts in flight over `wall_ms`.
    pub fn mean_prompts_in_flight(&self, wall_ms: f64) -> f64 {
        if wall_ms > 0.0 {
            self.prompt_ms / wall_ms
        } else {
            0.0
        }
    }
}

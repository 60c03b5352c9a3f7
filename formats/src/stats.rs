//! The statistics a finished theorem's `results.jsonl` line carries, and so the one struct the
//! engine fills and `summary.json`/`report.md` aggregate: counts ([`SearchStats`]) and where
//! the wall time went ([`TimeAccount`], with per-call latency [`Histogram`]s).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Counts the statistics report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SearchStats {
    pub nodes_expanded: u64,
    pub nodes_created: u64,
    pub gen_calls: u64,
    pub lean_calls: u64,
    pub ebm_calls: u64,
    /// Completions received.
    pub candidates_generated: u64,
    /// Distinct allowed tactics, summed over expanded nodes.
    pub candidates_unique: u64,
    pub candidates_banned: u64,
    /// Completions without a usable tactic.
    pub candidates_empty: u64,
    /// Unique tactics Lean accepted (new state, transposition or complete).
    pub candidates_passed_lean: u64,
    pub lean_errors: u64,
    pub lean_timeouts: u64,
    /// `goals: []` without `proofStatus: Completed`.
    pub incomplete: u64,
    pub transpositions: u64,
    /// Complete proofs the whole-proof check rejected.
    pub check_failures: u64,
    pub max_depth_reached: u64,
}

/// Per-call latencies on a log scale (8 buckets per doubling, from 10 µs), so a sweep's
/// percentiles can be merged from per-theorem lines without keeping every call. Stored as
/// `[[bucket, count], ...]` (JSON object keys would be strings).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(from = "Vec<(u32, u64)>", into = "Vec<(u32, u64)>")]
pub struct Histogram(pub BTreeMap<u32, u64>);

impl From<Vec<(u32, u64)>> for Histogram {
    fn from(pairs: Vec<(u32, u64)>) -> Self {
        Histogram(pairs.into_iter().collect())
    }
}

impl From<Histogram> for Vec<(u32, u64)> {
    fn from(h: Histogram) -> Self {
        h.0.into_iter().collect()
    }
}

const HIST_BASE_MS: f64 = 0.01;
const HIST_STEPS_PER_DOUBLING: f64 = 8.0;

impl Histogram {
    pub fn record(&mut self, ms: f64) {
        let bucket = if ms <= HIST_BASE_MS {
            0
        } else {
            ((ms / HIST_BASE_MS).log2() * HIST_STEPS_PER_DOUBLING).ceil() as u32
        };
        *self.0.entry(bucket).or_default() += 1;
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (bucket, count) in &other.0 {
            *self.0.entry(*bucket).or_default() += count;
        }
    }

    pub fn count(&self) -> u64 {
        self.0.values().sum()
    }

    /// The upper edge (ms) of the bucket holding quantile `q` in [0, 1]; `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (bucket, count) in &self.0 {
            seen += count;
            if seen >= rank {
                return Some(HIST_BASE_MS * 2f64.powf(*bucket as f64 / HIST_STEPS_PER_DOUBLING));
            }
        }
        None
    }
}

/// A theorem's time split, as results.jsonl stores it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TimeAccount {
    pub wall_ms: f64,
    pub gen_ms: f64,
    pub lean_ms: f64,
    pub ebm_ms: f64,
    pub wait_ms: f64,
    pub engine_ms: f64,
    /// `wall_ms` minus every phase.
    pub unaccounted_ms: f64,
    pub gen_latency: Histogram,
    pub lean_latency: Histogram,
    pub ebm_latency: Histogram,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_quantiles_are_bucket_edges_within_ten_percent() {
        let mut h = Histogram::default();
        for ms in 1..=100 {
            h.record(ms as f64);
        }
        let p50 = h.quantile(0.5).unwrap();
        assert!((50.0..=55.0).contains(&p50), "{p50}");
        let p99 = h.quantile(0.99).unwrap();
        assert!((99.0..=109.0).contains(&p99), "{p99}");
        let mut merged = Histogram::default();
        merged.merge(&h);
        merged.merge(&h);
        assert_eq!(merged.count(), 200);
        assert_eq!(Histogram::default().quantile(0.5), None);
    }
}

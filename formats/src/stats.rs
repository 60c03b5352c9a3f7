//! The statistics a finished theorem's `results.jsonl` line carries, and so the one struct the
//! engine fills and `summary.json`/`report.md` aggregate: counts ([`SearchStats`]) and where
//! the wall time went ([`TimeAccount`], with per-call latency [`Histogram`]s).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Defines [`SearchStats`] from one field list, so that a counter added here reaches
/// `results.jsonl`, `summary.json` and `report.md` with no other change: each field says how
/// theorems combine (`sum`, or `max` for a maximum).
macro_rules! search_stats {
    ($( $(#[doc = $doc:literal])* $field:ident: $combine:ident, )*) => {
        /// A theorem's counters, as its `results.jsonl` line carries them (flattened).
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        #[serde(default)]
        pub struct SearchStats {
            $( $(#[doc = $doc])* pub $field: u64, )*
        }

        impl SearchStats {
            /// Folds another theorem's counters into these.
            pub fn combine(&mut self, other: &Self) {
                $( self.$field = $combine(self.$field, other.$field); )*
            }

            /// Every counter with its name, in declaration order.
            pub fn fields(&self) -> Vec<(&'static str, u64)> {
                vec![$( (stringify!($field), self.$field), )*]
            }
        }
    };
}

fn sum(a: u64, b: u64) -> u64 {
    a + b
}

fn max(a: u64, b: u64) -> u64 {
    a.max(b)
}

search_stats! {
    nodes_expanded: sum,
    nodes_created: sum,
    gen_calls: sum,
    lean_calls: sum,
    ebm_calls: sum,
    /// States the value model could not score even alone (its 500 for that state): ranked
    /// by log-prob alone.
    ebm_unscored: sum,
    /// Completions received.
    candidates_generated: sum,
    /// Distinct allowed tactics, summed over expanded nodes.
    candidates_unique: sum,
    candidates_banned: sum,
    /// Completions without a usable tactic.
    candidates_empty: sum,
    /// Unique tactics Lean accepted (new state, transposition or complete).
    candidates_passed_lean: sum,
    lean_errors: sum,
    lean_timeouts: sum,
    /// `goals: []` without `proofStatus: Completed` that the whole-proof check also rejected.
    incomplete: sum,
    /// Answers with `sorries`: the tactic admitted a goal (`sorry`, `stop`, ...).
    sorries: sum,
    transpositions: sum,
    /// Complete proofs the whole-proof check rejected.
    check_failures: sum,
    /// The deepest node created.
    max_depth_reached: max,
    /// Tokens the policy wrote (SGLang `meta_info.completion_tokens`, OpenAI `usage`).
    tokens_generated: sum,
    /// Prompt tokens as the server counted them, per sample (a prompt repeated for each
    /// sample counts each time; SGLang's prefix cache makes the repeats cheap to compute).
    tokens_prompt: sum,
    /// Generated tokens no replay used: beyond the first tactic in tactic mode, after the
    /// first failing or banned tactic in proof mode, and whole duplicate samples.
    tokens_unreplayed: sum,
    /// Tactic applications the replay of continuations skipped because the same normalised
    /// tactic from the same node was already in the tree (proof mode).
    replay_reused: sum,
    /// `search.probe_tactics` tried in Lean (each also counts in `lean_calls`).
    probe_calls: sum,
    /// 1 when a probe tactic closed the theorem (through the whole-proof check).
    probe_proofs: sum,
    /// Generate requests sent ahead for the nodes the frontier would pop next, while Lean
    /// checked the current expansion (`search.speculate`; each also counts in `gen_calls`).
    speculated: sum,
    /// Speculated requests dropped because the expansion's children outranked their nodes:
    /// how often speculation would have changed the node popped.
    speculation_misses: sum,
    /// Failed `have … := …` steps the engine sent again as `have … := by sorry`
    /// (`search.decompose`) and Lean accepted: holes opened.
    holes_opened: sum,
    /// Nodes whose goals closed on a path carrying holes: complete given their holes' proofs.
    conditional_nodes: sum,
    /// Subgoal searches started, one per distinct (normalised) hole goal.
    subgoals_opened: sum,
    /// Subgoal searches that closed their goal (counted again after an eviction re-proves one).
    subgoals_proved: sum,
    /// Holes of a conditional node whose goal already had a subgoal search, running or proved.
    subgoals_reused: sum,
    /// 1 when the theorem's proof was assembled from subgoal proofs.
    proved_by_decomposition: sum,
    /// Planner requests (`[planner]`), one per planned node; apart from `gen_calls`.
    planner_calls: sum,
    /// Planner requests that failed after their retries (the search went on without them).
    planner_failures: sum,
    /// Tokens the planner wrote, as its server counted them; apart from `tokens_generated`.
    planner_tokens_generated: sum,
    /// Prompt tokens of planner requests, as its server counted them.
    planner_tokens_prompt: sum,
    /// Distinct sketches read from the planner's answers (an answer without a Lean block
    /// after the statement's `:= by` gives none).
    sketches: sum,
    /// Sketches Lean refused for anything but their own sorries (`sketch_error` rows).
    sketch_errors: sum,
    /// Sketches that made a node (conditional, carrying holes, or a proof to check).
    sketch_nodes: sum,
    /// 1 when the theorem's proof went through a sketch.
    proved_by_sketch: sum,
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
    /// Waiting on the planner once the policy's answer was in (`[planner]`; its requests run
    /// beside the policy's).
    pub plan_ms: f64,
    /// `wall_ms` minus every phase.
    pub unaccounted_ms: f64,
    pub gen_latency: Histogram,
    pub lean_latency: Histogram,
    pub ebm_latency: Histogram,
    /// Each planner request's own latency.
    pub plan_latency: Histogram,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_sum_and_depths_take_the_maximum() {
        let mut a = SearchStats {
            nodes_expanded: 2,
            max_depth_reached: 7,
            ..SearchStats::default()
        };
        a.combine(&SearchStats {
            nodes_expanded: 3,
            max_depth_reached: 4,
            ..SearchStats::default()
        });
        assert_eq!((a.nodes_expanded, a.max_depth_reached), (5, 7));
        let json = serde_json::to_value(&a).unwrap();
        let names: Vec<_> = a.fields().into_iter().map(|(name, _)| name).collect();
        assert_eq!(names.len(), json.as_object().unwrap().len());
        assert!(names.iter().all(|n| json.get(*n).is_some()), "{names:?}");
    }

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

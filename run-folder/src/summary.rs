//! A sweep's statistics, rebuilt from `results.jsonl`, `runs.jsonl` and `config.json` at any
//! time: what `DIR/summary.json` holds and the reports render.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use formats::progress::ProgressError;
use formats::results::{
    latest_by_name, read_results, ResultsError, SearchStatus, TheoremResult, RESULTS_FILE,
};
use formats::runs::{read_config, read_runs, RunFileError, RunRecord};
use formats::search_mode::SearchShape;
use formats::stats::{Histogram, SearchStats};
use formats::utilisation::UrlUtilisation;

pub const SUMMARY_FILE: &str = "summary.json";

/// How busy one generate server was over all runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerUse {
    pub url: String,
    pub requests: u64,
    pub prompts: u64,
    pub busy_ms: f64,
    /// Share of the runs' wall time with at least one request in flight.
    pub busy_share: f64,
    pub mean_prompts_in_flight: f64,
}

/// One row of the where-the-time-went table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseRow {
    /// `generate`, `lean`, `ebm`, `wait`, `engine` or `unaccounted`.
    pub phase: String,
    pub total_ms: f64,
    /// Of the summed theorem wall time; the rows sum to 1.
    pub share: f64,
    pub calls: u64,
    pub mean_ms_per_call: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    pub mean: f64,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub theorems: usize,
    pub proved: usize,
    pub prove_rate: f64,
    /// Theorems by final status.
    pub statuses: BTreeMap<String, usize>,
    /// `error` theorems by reason (first line of the message).
    pub errors: BTreeMap<String, usize>,
    /// Summed over theorems (theorem-seconds, not the sweep's elapsed time).
    pub theorem_wall_ms: f64,
    /// First theorem start to last theorem end (includes pauses between resumed runs).
    pub sweep_span_ms: f64,
    /// Wall time covered by the runs (`runs.jsonl`): resumed runs add up, the pauses between
    /// them do not count, and shards that ran at once (a merged sweep) count once. The span
    /// when there is no record.
    pub sweep_wall_ms: f64,
    /// The runs' wall times added up: machine time, larger than `sweep_wall_ms` when shards
    /// ran in parallel.
    #[serde(default)]
    pub machine_wall_ms: f64,
    pub runs: usize,
    /// Theorems over `sweep_wall_ms`.
    pub theorems_per_hour: f64,
    /// Per policy URL, over all runs.
    pub generate_servers: Vec<ServerUse>,
    pub time: Vec<PhaseRow>,
    /// Per-theorem wall time (ms).
    pub theorem_latency_ms: Option<Percentiles>,
    /// Every counter of the theorems' result lines, combined (flattened: one key each).
    #[serde(flatten)]
    pub totals: SearchStats,
    /// Distinct allowed tactics per expanded node (out of `num_candidates`).
    pub unique_per_expansion: f64,
    /// New nodes per expanded node.
    pub children_per_expansion: f64,
    /// Unique tactics Lean accepted, over unique tactics.
    pub lean_pass_rate: f64,
    pub mean_generate_latency_ms: Option<f64>,
    /// What an expansion asked for: `tactic`, `proof`, or `pass@N` (whole proofs, one
    /// expansion, no probes); `None` without `config.json`.
    pub mode: Option<String>,
    pub tokens_per_theorem: f64,
    /// Generated tokens of the whole sweep over the theorems proved (BurnQED's "tokens per
    /// proof": budget over proofs); 0 with no proof.
    pub tokens_per_proof: f64,
    /// Generated tokens per node Lean accepted into a tree (roots not counted).
    pub tokens_per_accepted_node: f64,
    /// The resolved config the sweep ran with (`config.json`), when present.
    pub config: Option<serde_json::Value>,
}

#[derive(Debug, thiserror::Error)]
pub enum SummaryError {
    #[error(transparent)]
    Results(#[from] ResultsError),
    #[error(transparent)]
    RunFile(#[from] RunFileError),
    #[error(transparent)]
    Progress(#[from] ProgressError),
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
}

fn ratio(num: f64, den: f64) -> f64 {
    if den > 0.0 {
        num / den
    } else {
        0.0
    }
}

fn percentiles(mut values: Vec<f64>) -> Option<Percentiles> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let at =
        |q: f64| values[((q * values.len() as f64).ceil() as usize).clamp(1, values.len()) - 1];
    Some(Percentiles {
        mean: values.iter().sum::<f64>() / values.len() as f64,
        p50: at(0.5),
        p95: at(0.95),
        p99: at(0.99),
        max: values[values.len() - 1],
    })
}

/// The first line of an error, shortened, so equal causes group together.
pub(crate) fn reason(error: Option<&str>) -> String {
    let line = error
        .unwrap_or("unknown")
        .lines()
        .next()
        .unwrap_or("")
        .trim();
    match line.char_indices().nth(160) {
        Some((i, _)) => format!("{}…", &line[..i]),
        None => line.to_owned(),
    }
}

impl Summary {
    /// Statistics of the latest line per theorem, over the given runs.
    pub fn from_results(
        results: &[TheoremResult],
        runs: &[RunRecord],
        config: Option<serde_json::Value>,
    ) -> Self {
        let n = results.len();
        let sum = |f: &dyn Fn(&TheoremResult) -> f64| results.iter().map(f).sum::<f64>();
        let proved = results.iter().filter(|r| r.proved).count();
        let mut statuses = BTreeMap::new();
        let mut errors = BTreeMap::new();
        for r in results {
            let status = serde_json::to_value(r.status).expect("status serialises");
            *statuses
                .entry(status.as_str().unwrap_or("").to_owned())
                .or_insert(0) += 1;
            if r.status == SearchStatus::Error {
                *errors.entry(reason(r.error.as_deref())).or_insert(0) += 1;
            }
        }
        let wall = sum(&|r| r.time.wall_ms);
        let merged = |f: &dyn Fn(&TheoremResult) -> &Histogram| {
            let mut h = Histogram::default();
            results.iter().for_each(|r| h.merge(f(r)));
            h
        };
        let phase = |name: &str, total: f64, hist: Option<Histogram>| {
            let calls = hist.as_ref().map_or(0, Histogram::count);
            let q = |p| hist.as_ref().and_then(|h| h.quantile(p));
            PhaseRow {
                phase: name.to_owned(),
                total_ms: total,
                share: ratio(total, wall),
                calls,
                mean_ms_per_call: (calls > 0).then(|| total / calls as f64),
                p50_ms: q(0.5),
                p95_ms: q(0.95),
                p99_ms: q(0.99),
            }
        };
        let gen_ms = sum(&|r| r.time.gen_ms);
        let time = vec![
            phase("generate", gen_ms, Some(merged(&|r| &r.time.gen_latency))),
            phase(
                "lean",
                sum(&|r| r.time.lean_ms),
                Some(merged(&|r| &r.time.lean_latency)),
            ),
            phase(
                "ebm",
                sum(&|r| r.time.ebm_ms),
                Some(merged(&|r| &r.time.ebm_latency)),
            ),
            phase("wait", sum(&|r| r.time.wait_ms), None),
            phase(
                "plan",
                sum(&|r| r.time.plan_ms),
                Some(merged(&|r| &r.time.plan_latency)),
            ),
            phase("engine", sum(&|r| r.time.engine_ms), None),
            phase("unaccounted", sum(&|r| r.time.unaccounted_ms), None),
        ];
        let start = results
            .iter()
            .map(|r| r.finished_unix_ms as f64 - r.time.wall_ms)
            .fold(f64::INFINITY, f64::min);
        let end = results
            .iter()
            .map(|r| r.finished_unix_ms as f64)
            .fold(0.0, f64::max);
        let span = if n > 0 { (end - start).max(0.0) } else { 0.0 };
        let run_wall = covered_ms(runs.iter());
        let sweep_wall = if runs.is_empty() { span } else { run_wall };
        let mut totals = SearchStats::default();
        results.iter().for_each(|r| totals.combine(&r.stats));
        let expanded = totals.nodes_expanded;
        let unique = totals.candidates_unique;
        let gen_calls = totals.gen_calls;
        // Every theorem with a tree has a root that was not anyone's child.
        let roots = results.iter().filter(|r| r.stats.nodes_created > 0).count() as u64;
        let tokens = totals.tokens_generated as f64;
        let accepted = totals.nodes_created.saturating_sub(roots) as f64;
        Summary {
            theorems: n,
            proved,
            prove_rate: ratio(proved as f64, n as f64),
            statuses,
            errors,
            theorem_wall_ms: wall,
            sweep_span_ms: span,
            sweep_wall_ms: sweep_wall,
            machine_wall_ms: runs.iter().map(|r| r.wall_ms).sum(),
            runs: runs.len(),
            theorems_per_hour: ratio(n as f64 * 3_600_000.0, sweep_wall),
            generate_servers: server_use(runs),
            time,
            theorem_latency_ms: percentiles(results.iter().map(|r| r.time.wall_ms).collect()),
            unique_per_expansion: ratio(unique as f64, expanded as f64),
            children_per_expansion: ratio(
                totals.nodes_created.saturating_sub(roots) as f64,
                expanded as f64,
            ),
            lean_pass_rate: ratio(totals.candidates_passed_lean as f64, unique as f64),
            mean_generate_latency_ms: (gen_calls > 0).then(|| gen_ms / gen_calls as f64),
            mode: config.as_ref().and_then(mode),
            tokens_per_theorem: ratio(tokens, n as f64),
            tokens_per_proof: ratio(tokens, proved as f64),
            tokens_per_accepted_node: ratio(tokens, accepted),
            totals,
            config,
        }
    }

    /// Reads `DIR/results.jsonl` (latest line per theorem), `DIR/runs.jsonl` and
    /// `DIR/config.json`.
    pub fn from_dir(dir: &Path) -> Result<Self, SummaryError> {
        let results = latest_by_name(read_results(&dir.join(RESULTS_FILE))?);
        Ok(Self::from_results(
            &results,
            &read_runs(dir)?,
            read_config(dir)?,
        ))
    }

    /// Writes `DIR/summary.json`.
    pub fn write_json(&self, dir: &Path) -> Result<(), SummaryError> {
        let json = serde_json::to_string_pretty(self).expect("summary serialises");
        write_file(&dir.join(SUMMARY_FILE), &(json + "\n"))
    }
}

pub(crate) fn write_file(path: &Path, text: &str) -> Result<(), SummaryError> {
    std::fs::write(path, text).map_err(|e| SummaryError::File {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

/// The search mode a sweep's `config.json` describes (see [`Summary::mode`]).
fn mode(config: &serde_json::Value) -> Option<String> {
    let search: SearchShape = serde_json::from_value(config.get("search")?.clone()).ok()?;
    Some(search.mode())
}

/// Sums each URL's counters over the runs.
/// The length of the union of the runs' `[start, start + wall]` intervals.
fn covered_ms<'a>(runs: impl Iterator<Item = &'a RunRecord>) -> f64 {
    let mut spans: Vec<(f64, f64)> = runs
        .map(|r| {
            let start = r.started_unix_ms as f64;
            (start, start + r.wall_ms.max(0.0))
        })
        .collect();
    spans.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut covered = 0.0;
    let mut reached = f64::NEG_INFINITY;
    for (start, end) in spans {
        covered += (end - start.max(reached)).max(0.0);
        reached = reached.max(end);
    }
    covered
}

/// Per URL, its busy time over the wall time covered by the runs that used it.
fn server_use(runs: &[RunRecord]) -> Vec<ServerUse> {
    let mut by_url: Vec<UrlUtilisation> = Vec::new();
    for u in runs.iter().flat_map(|r| &r.generate_servers) {
        match by_url.iter_mut().find(|t| t.url == u.url) {
            Some(t) => {
                t.requests += u.requests;
                t.prompts += u.prompts;
                t.busy_ms += u.busy_ms;
                t.prompt_ms += u.prompt_ms;
            }
            None => by_url.push(u.clone()),
        }
    }
    by_url
        .into_iter()
        .map(|u| {
            let wall_ms = covered_ms(
                runs.iter()
                    .filter(|r| r.generate_servers.iter().any(|g| g.url == u.url)),
            );
            ServerUse {
                busy_share: u.busy_share(wall_ms),
                mean_prompts_in_flight: u.mean_prompts_in_flight(wall_ms),
                url: u.url,
                requests: u.requests,
                prompts: u.prompts,
                busy_ms: u.busy_ms,
            }
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use formats::stats::{SearchStats, TimeAccount};

    pub(crate) fn result(name: &str, status: SearchStatus, error: Option<&str>) -> TheoremResult {
        let mut time = TimeAccount {
            wall_ms: 1000.0,
            gen_ms: 800.0,
            lean_ms: 150.0,
            wait_ms: 20.0,
            engine_ms: 29.0,
            unaccounted_ms: 1.0,
            ..TimeAccount::default()
        };
        time.gen_latency.record(400.0);
        time.gen_latency.record(400.0);
        TheoremResult {
            name: name.into(),
            proved: status == SearchStatus::Proved,
            status,
            error: error.map(String::from),
            error_kind: None,
            proof_tactics: vec![],
            proof: None,
            axioms: vec![],
            finished_unix_ms: 10_000,
            stats: SearchStats {
                nodes_expanded: 4,
                nodes_created: 9,
                gen_calls: 2,
                candidates_generated: 64,
                candidates_unique: 20,
                candidates_passed_lean: 10,
                tokens_generated: 400,
                tokens_prompt: 3000,
                ..SearchStats::default()
            },
            time,
        }
    }

    /// Merged shards ran at once on two machines: the sweep took the elapsed time, not the sum,
    /// and each server's share is over the runs that used it.
    #[test]
    fn parallel_shards_count_their_overlap_once() {
        let results = vec![result("a", SearchStatus::Proved, None)];
        let shard = |started_unix_ms: u64, url: &str| RunRecord {
            started_unix_ms,
            wall_ms: 2000.0,
            searched: 1,
            stopped: false,
            generate_servers: vec![UrlUtilisation {
                url: url.into(),
                requests: 1,
                prompts: 1,
                busy_ms: 1000.0,
                prompt_ms: 1000.0,
            }],
        };
        let runs = [shard(0, "http://a"), shard(500, "http://b")];
        let s = Summary::from_results(&results, &runs, None);
        assert_eq!((s.sweep_wall_ms, s.machine_wall_ms), (2500.0, 4000.0));
        assert_eq!(s.theorems_per_hour, 3_600_000.0 / 2500.0);
        let shares: Vec<f64> = s.generate_servers.iter().map(|g| g.busy_share).collect();
        assert_eq!(shares, [0.5, 0.5]);
        let headline = crate::report::render_headline(&s);
        assert!(
            headline.contains("in 2.5 s of sweep time")
                && headline.contains("; 4.0 s of machine time, 900 theorems per machine-hour"),
            "{headline}"
        );
    }

    #[test]
    fn rates_and_time_shares() {
        let results = vec![
            result("a", SearchStatus::Proved, None),
            result(
                "b",
                SearchStatus::Error,
                Some("Lean infrastructure failure: crash\nmore"),
            ),
            result(
                "c",
                SearchStatus::Error,
                Some("Lean infrastructure failure: crash"),
            ),
            result("d", SearchStatus::NodeBudget, None),
        ];
        // A run, then a resumed run ten seconds later: the pause does not count.
        let run = |started_unix_ms: u64, busy_ms: f64| RunRecord {
            started_unix_ms,
            wall_ms: 2000.0,
            searched: 2,
            stopped: false,
            generate_servers: vec![UrlUtilisation {
                url: "http://gpu0".into(),
                requests: 4,
                prompts: 64,
                busy_ms,
                prompt_ms: busy_ms * 16.0,
            }],
        };
        let s = Summary::from_results(&results, &[run(0, 1900.0), run(12_000, 1980.0)], None);
        assert_eq!((s.theorems, s.proved, s.prove_rate), (4, 1, 0.25));
        assert_eq!(
            (
                s.runs,
                s.sweep_wall_ms,
                s.machine_wall_ms,
                s.theorems_per_hour
            ),
            (2, 4000.0, 4000.0, 3600.0)
        );
        let gpu = &s.generate_servers[0];
        assert_eq!(
            (gpu.requests, gpu.busy_share, gpu.mean_prompts_in_flight),
            (8, 0.97, 15.52)
        );
        assert_eq!(s.statuses["error"], 2);
        assert_eq!(s.errors["Lean infrastructure failure: crash"], 2);
        let shares: f64 = s.time.iter().map(|p| p.share).sum();
        assert!((shares - 1.0).abs() < 1e-9);
        assert_eq!(s.time[0].calls, 8);
        assert_eq!(s.time[0].mean_ms_per_call, Some(400.0));
        assert_eq!(s.unique_per_expansion, 5.0);
        assert_eq!(s.children_per_expansion, 2.0);
        assert_eq!(s.lean_pass_rate, 0.5);
        assert_eq!(s.mean_generate_latency_ms, Some(400.0));
        assert_eq!(s.sweep_span_ms, 1000.0);
        assert_eq!(
            (
                s.totals.tokens_generated,
                s.tokens_per_theorem,
                s.tokens_per_proof
            ),
            (1600, 400.0, 1600.0)
        );
        // 4 theorems of 9 nodes, one of them the root.
        assert_eq!(s.tokens_per_accepted_node, 50.0);
        assert_eq!(s.mode, None);
        let mode = |search: serde_json::Value| {
            let config = serde_json::json!({ "search": search });
            Summary::from_results(&results, &[], Some(config)).mode
        };
        assert_eq!(mode(serde_json::json!({})).as_deref(), Some("tactic"));
        let pass = serde_json::json!({"expansion": "proof", "max_nodes": 1, "num_candidates": 32});
        assert_eq!(mode(pass).as_deref(), Some("pass@32"));
    }
}

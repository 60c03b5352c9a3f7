//! `stepwise traj stats`: what a set of trajectory files holds, in the terms that decide
//! whether an EBM can learn from it (label balance, branching, proof depths).

use formats::NodeStatus;
use std::collections::BTreeMap;
use std::fmt::Write as _;

use formats::trajectory::FailedRow;
use serde::Serialize;

use crate::trajectories::Trajectories;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    pub median: f64,
}

impl Summary {
    fn of(mut values: Vec<f64>) -> Option<Self> {
        if values.is_empty() {
            return None;
        }
        values.sort_by(f64::total_cmp);
        let n = values.len();
        let median = if n % 2 == 1 {
            values[n / 2]
        } else {
            (values[n / 2 - 1] + values[n / 2]) / 2.0
        };
        Some(Self {
            min: values[0],
            max: values[n - 1],
            mean: values.iter().sum::<f64>() / n as f64,
            median,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrajStats {
    pub total_nodes: usize,
    /// Theorem runs (one search of one theorem).
    pub runs: usize,
    pub distinct_theorems: usize,
    pub runs_proved: usize,
    /// Theorems with at least one proved run.
    pub distinct_theorems_proved: usize,
    pub positive_labels: usize,
    pub negative_labels: usize,
    pub positive_fraction: f64,
    /// Nodes with at least one child, or marked `expanded`.
    pub expanded_nodes: usize,
    /// Mean children per expanded node.
    pub branching_factor: f64,
    /// Node depth -> count.
    pub depth_histogram: BTreeMap<u32, usize>,
    /// Tactics in each found proof (depth of the deepest proof-path node).
    pub proof_depths: Option<Summary>,
    pub nodes_per_run: Option<Summary>,
    /// Failed attempt outcome -> count.
    pub failed_by_outcome: BTreeMap<String, usize>,
}

impl TrajStats {
    pub fn compute(traj: &Trajectories, failed: &[FailedRow]) -> Self {
        let total_nodes = traj.nodes.len();
        let positive_labels = traj.nodes.iter().filter(|n| n.on_path).count();
        let expanded: Vec<usize> = (0..total_nodes)
            .filter(|&i| {
                !traj.children[i].is_empty() || traj.nodes[i].status == NodeStatus::Expanded
            })
            .collect();
        let child_count: usize = expanded.iter().map(|&i| traj.children[i].len()).sum();
        let mut depth_histogram = BTreeMap::new();
        for node in &traj.nodes {
            *depth_histogram.entry(node.depth).or_insert(0) += 1;
        }
        let proof_depths = traj
            .runs
            .iter()
            .filter_map(|r| {
                r.nodes
                    .iter()
                    .filter(|&&i| traj.nodes[i].on_path)
                    .map(|&i| traj.nodes[i].depth)
                    .max()
            })
            .map(f64::from)
            .collect::<Vec<_>>();
        let mut failed_by_outcome = BTreeMap::new();
        for row in failed {
            *failed_by_outcome.entry(row.outcome.clone()).or_insert(0) += 1;
        }
        Self {
            total_nodes,
            runs: traj.runs.len(),
            distinct_theorems: traj.theorem_names().len(),
            runs_proved: proof_depths.len(),
            distinct_theorems_proved: traj
                .runs
                .iter()
                .filter(|r| r.proved(&traj.nodes))
                .map(|r| r.theorem.as_str())
                .collect::<std::collections::HashSet<_>>()
                .len(),
            positive_labels,
            negative_labels: total_nodes - positive_labels,
            positive_fraction: ratio(positive_labels, total_nodes),
            expanded_nodes: expanded.len(),
            branching_factor: ratio(child_count, expanded.len()),
            depth_histogram,
            proof_depths: Summary::of(proof_depths),
            nodes_per_run: Summary::of(traj.runs.iter().map(|r| r.nodes.len() as f64).collect()),
            failed_by_outcome,
        }
    }

    /// The human-readable report, with a text histogram of depths.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "nodes            {}", self.total_nodes);
        let _ = writeln!(
            out,
            "theorems         {} runs ({} distinct), {} runs proved ({:.1}%), {} distinct proved",
            self.runs,
            self.distinct_theorems,
            self.runs_proved,
            100.0 * ratio(self.runs_proved, self.runs),
            self.distinct_theorems_proved
        );
        let _ = writeln!(
            out,
            "labels           {} positive / {} negative ({:.2}% positive)",
            self.positive_labels,
            self.negative_labels,
            100.0 * self.positive_fraction
        );
        let _ = writeln!(
            out,
            "branching        {:.2} children per expanded node ({} expanded)",
            self.branching_factor, self.expanded_nodes
        );
        let summary = |s: &Option<Summary>| match s {
            Some(s) => format!(
                "min {} max {} mean {:.2} median {}",
                s.min, s.max, s.mean, s.median
            ),
            None => "-".to_string(),
        };
        let _ = writeln!(out, "proof depths     {}", summary(&self.proof_depths));
        let _ = writeln!(out, "nodes per run    {}", summary(&self.nodes_per_run));
        let _ = writeln!(out, "depth distribution");
        let widest = self.depth_histogram.values().copied().max().unwrap_or(0);
        for (depth, count) in &self.depth_histogram {
            let bar = (count * 40).div_ceil(widest.max(1));
            let _ = writeln!(out, "  {depth:>4} {count:>8} {}", "#".repeat(bar));
        }
        let total_failed: usize = self.failed_by_outcome.values().sum();
        let _ = writeln!(out, "failed attempts  {total_failed}");
        for (outcome, count) in &self.failed_by_outcome {
            let _ = writeln!(out, "  {outcome:<14} {count}");
        }
        out
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

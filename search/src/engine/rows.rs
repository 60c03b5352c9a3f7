//! A finished search as output rows: its `results.jsonl` line and its trajectory rows (see
//! [`formats::trajectory`]).

use std::collections::HashMap;

use formats::results::{SearchStatus, TheoremResult};
use formats::stats::TimeAccount;
use formats::trajectory::{FailedRow, NodeRow};

use super::node::NodeId;
use super::search::SearchOutcome;

impl SearchOutcome {
    /// The theorem's `results.jsonl` line; `time` is its closed books.
    pub fn result_line(&self, name: &str, time: TimeAccount) -> TheoremResult {
        let proof = self.proof.as_ref();
        TheoremResult {
            name: name.to_owned(),
            proved: self.status == SearchStatus::Proved,
            status: self.status,
            error: self.error.clone(),
            error_kind: self.error_kind,
            proof_tactics: self.proof_tactics.clone(),
            proof: proof.map(|p| p.proof.clone()),
            axioms: proof.map(|p| p.axioms.clone()).unwrap_or_default(),
            finished_unix_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            stats: self.stats.clone(),
            time,
        }
    }

    /// One row per node, labelled 1 with `remaining_depth` on the proof path and 0 elsewhere
    /// (a proof assembled from subgoal proofs has one path per search: the main tree's to
    /// the conditional node, and each subgoal's from its root); one row per failed attempt;
    /// all stamped with the sweep run's `run_id`.
    pub fn trajectory_rows(&self, theorem: &str, run_id: i64) -> (Vec<NodeRow>, Vec<FailedRow>) {
        let mut remaining: HashMap<NodeId, u32> = HashMap::new();
        for last in self.proof_node.iter().chain(&self.proof_subgoals) {
            let path = self.tree.path(*last);
            let len = path.len().saturating_sub(1) as u32;
            for id in path {
                remaining.insert(id, len - self.tree.get(id).depth);
            }
        }
        let nodes = self
            .tree
            .nodes()
            .iter()
            .map(|n| {
                let on_path = remaining.contains_key(&n.id);
                NodeRow {
                    theorem: theorem.to_owned(),
                    node_id: n.id,
                    parent_id: n.parent,
                    depth: n.depth,
                    tactic: n.tactic.as_deref().map(str::to_owned),
                    state: n.goals.to_string(),
                    goal_count: n.goal_count,
                    llm_logprob: n.llm_logprob,
                    cum_logprob: n.cum_logprob,
                    energy: if n.status.is_terminal() {
                        None
                    } else {
                        n.energy
                    },
                    score: n.score,
                    status: n.status,
                    on_proof_path: on_path,
                    label: i32::from(on_path),
                    remaining_depth: remaining.get(&n.id).copied(),
                    created_ms: n.created_ms.round() as i64,
                    run_id,
                    subgoal_of: n.subgoal.map(|s| self.subgoal_openers[s as usize]),
                }
            })
            .collect();
        let failed = self
            .failed
            .iter()
            .map(|f| FailedRow {
                theorem: theorem.to_owned(),
                parent_id: f.parent,
                tactic: f.tactic.to_string(),
                outcome: f.outcome.as_str().to_owned(),
                message: f.message.to_string(),
                run_id,
            })
            .collect();
        (nodes, failed)
    }
}

//! A finished search as trajectory rows (see [`crate::trajectory`]).

use super::search::SearchOutcome;
use crate::trajectory::{FailedRow, NodeRow};

impl SearchOutcome {
    /// One row per node, labelled 1 with `remaining_depth` on the proof path and 0 elsewhere;
    /// one row per failed attempt.
    pub fn trajectory_rows(&self, theorem: &str) -> (Vec<NodeRow>, Vec<FailedRow>) {
        let path = self
            .proof_node
            .map(|n| self.tree.path(n))
            .unwrap_or_default();
        let proof_len = path.len().saturating_sub(1) as u32;
        let nodes = self
            .tree
            .nodes()
            .iter()
            .map(|n| {
                let on_path = path.contains(&n.id);
                NodeRow {
                    theorem: theorem.to_owned(),
                    node_id: n.id,
                    parent_id: n.parent,
                    depth: n.depth,
                    tactic: n.tactic.clone(),
                    state: n.goals.clone(),
                    goal_count: n.goal_count,
                    llm_logprob: n.llm_logprob,
                    cum_logprob: n.cum_logprob,
                    energy: if n.status.is_terminal() {
                        None
                    } else {
                        n.energy
                    },
                    score: n.score,
                    status: n.status.as_str().to_owned(),
                    on_proof_path: on_path,
                    label: i32::from(on_path),
                    remaining_depth: on_path.then(|| proof_len - n.depth),
                    created_ms: n.created_ms.round() as i64,
                }
            })
            .collect();
        let failed = self
            .failed
            .iter()
            .map(|f| FailedRow {
                theorem: theorem.to_owned(),
                parent_id: f.parent,
                tactic: f.tactic.clone(),
                outcome: f.outcome.to_owned(),
                message: f.message.clone(),
            })
            .collect();
        (nodes, failed)
    }
}

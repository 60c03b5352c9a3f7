//! Subgoal decomposition in the search (`search.decompose`): the hole sent for a failed
//! `have`, what closed goals mean in a subgoal search or on a path carrying holes, the subgoal
//! searches of a conditional node, and the check of its assembled proof. The texts and the
//! cache are `engine::decompose`'s.

use std::collections::HashMap;
use std::sync::Arc;

use formats::NodeStatus;
use lean_bridge::TacticOutcome;

use super::{Applied, AttemptOutcome, End, Proof, Search};
use crate::candidates::Step;
use crate::engine::decompose::{assemble, goal_key, hole_tactic, Subgoal};
use crate::engine::frontier::priority;
use crate::engine::node::{NewNode, NodeId};
use crate::engine::timing::Phase;
use crate::env::Hole;

impl Search<'_, '_> {
    /// A main-tree node is always worth expanding; a subgoal node while its subgoal is not
    /// proved and a conditional node still waits for it. A subgoal that is wanted again
    /// (an eviction, a new conditional node) has its open nodes queued again
    /// ([`Search::requeue`]).
    pub(super) fn wanted(&self, id: NodeId) -> bool {
        let Some(s) = self.tree.get(id).subgoal else {
            return true;
        };
        let subgoal = self.subgoals.get(s);
        subgoal.proof.is_none()
            && subgoal
                .waiting
                .iter()
                .any(|&c| self.tree.get(c).status == NodeStatus::Conditional)
    }

    /// Queues the open nodes of subgoal `s` again (the frontier keeps one entry per node).
    pub(super) fn requeue(&mut self, s: u32) {
        let open: Vec<(NodeId, f64)> = self
            .tree
            .nodes()
            .iter()
            .filter(|n| n.subgoal == Some(s) && n.status == NodeStatus::Open)
            .map(|n| (n.id, n.score))
            .collect();
        for (id, score) in open {
            self.frontier.push(id, score);
        }
    }

    /// The hole to send in place of `step`, which Lean refused at `parent`: with
    /// `search.decompose`, in the main tree, below `search.max_subgoals` holes on the path,
    /// for a `have`/`obtain` with a stated type.
    pub(super) fn hole_for(&self, parent: NodeId, step: &Step) -> Option<String> {
        let config = self.params.config;
        let p = self.tree.get(parent);
        let room = (p.holes_on_path as usize) < config.max_subgoals;
        (config.decompose && p.subgoal.is_none() && room)
            .then(|| hole_tactic(&step.tactic))
            .flatten()
    }

    /// Sends `hole` (`have h : P := by sorry`) where `step` failed. Lean's answer with one
    /// hole makes a node that carries it (queued like any node; a continuation's replay goes
    /// on from it); any other answer is a failed attempt of the hole tactic.
    pub(super) async fn open_hole(
        &mut self,
        parent: NodeId,
        step: &Step,
        hole: &str,
    ) -> Result<Applied, End> {
        let state = self.tree.get(parent).state;
        self.timer.lap(self.params.clock, Phase::Engine);
        let outcome = self.session.apply_with_holes(state, hole).await;
        self.timer.call(self.params.clock, Phase::Lean);
        self.stats.lean_calls += 1;
        let outcome = outcome.map_err(|e| End::Error(e.kind(), e.to_string()))?;
        let tactic = self.interner.intern(hole);
        let new = self.new_node(Arc::clone(&tactic), step);
        match outcome {
            TacticOutcome::Holes {
                state,
                goals,
                holes,
            } if holes.len() == 1 => {
                self.stats.holes_opened += 1;
                if goals.is_empty() {
                    self.closed(parent, new(goals, state, holes)).await
                } else {
                    Ok(self.add_open(parent, new(goals, state, holes)))
                }
            }
            other => {
                let message = match other {
                    TacticOutcome::Error { message } => message,
                    other => format!("the hole was not opened: {other:?}"),
                };
                self.fail(parent, tactic, AttemptOutcome::Error, &message);
                Ok(Applied::Failed)
            }
        }
    }

    /// A node whose goals closed. In a subgoal search the subgoal is proved; on a path
    /// carrying holes the node is conditional; anywhere else it goes to the whole-proof
    /// check (a pass ends the search; a rejection is recorded as a failed attempt).
    pub(super) async fn closed(
        &mut self,
        parent: NodeId,
        mut new: NewNode,
    ) -> Result<Applied, End> {
        let p = self.tree.get(parent);
        if let Some(s) = p.subgoal {
            new.status = NodeStatus::Unverified;
            let id = self.tree.add_child(parent, new);
            self.subgoal_proved(s, id).await?;
            return Ok(Applied::Leaf(id));
        }
        if p.holes_on_path > 0 || !new.holes.is_empty() {
            new.status = NodeStatus::Conditional;
            let id = self.tree.add_child(parent, new);
            self.conditional(id).await?;
            return Ok(Applied::Leaf(id));
        }
        new.status = NodeStatus::Unverified;
        let tactic = Arc::clone(&new.tactic);
        let id = self.tree.add_child(parent, new);
        if let Some(errors) = self.check(id).await? {
            self.fail(parent, tactic, AttemptOutcome::CheckFailed, &errors);
        }
        Ok(Applied::Failed)
    }

    /// Conditional node `id`: each hole on its path is a subgoal search, the one already
    /// opened for the same goal (proved or not) or a new one rooted at the hole's own proof
    /// state. If every hole is proved already, the proof is assembled and checked now.
    async fn conditional(&mut self, id: NodeId) -> Result<(), End> {
        self.stats.conditional_nodes += 1;
        let holes: Vec<Hole> = self
            .tree
            .path(id)
            .into_iter()
            .flat_map(|n| self.tree.get(n).holes.to_vec())
            .collect();
        let node = self.tree.get(id);
        let base = priority(self.params.config, node.cum_logprob, node.depth, None);
        for hole in holes {
            if let Some(s) = self.subgoals.find(&hole.goal) {
                self.stats.subgoals_reused += 1;
                self.subgoals.get_mut(s).waiting.push(id);
                self.requeue(s);
                continue;
            }
            let s = self.subgoals.list.len() as u32;
            let root = self.tree.add_subgoal_root(s, &hole, self.elapsed_ms());
            self.subgoals.add(Subgoal {
                goal: hole.goal,
                root,
                opener: id,
                base,
                proof: None,
                waiting: vec![id],
            });
            self.stats.subgoals_opened += 1;
            self.unqueued.push(root);
        }
        self.assemble_and_check(id).await
    }

    /// Node `id` closed subgoal `s`: every conditional node waiting for it whose holes are
    /// now all proved is assembled and checked at once, oldest first.
    async fn subgoal_proved(&mut self, s: u32, id: NodeId) -> Result<(), End> {
        let subgoal = self.subgoals.get_mut(s);
        if subgoal.proof.is_some() {
            return Ok(());
        }
        subgoal.proof = Some(id);
        self.stats.subgoals_proved += 1;
        for waiting in subgoal.waiting.clone() {
            self.assemble_and_check(waiting).await?;
        }
        Ok(())
    }

    /// The whole-proof check of conditional node `id`'s proof, each hole's sorry replaced by
    /// its subgoal's script, once every hole has one. A pass ends the search; a rejection
    /// makes the node `check_failed` and evicts the subgoal proofs it used from the cache,
    /// so their searches go on.
    async fn assemble_and_check(&mut self, id: NodeId) -> Result<(), End> {
        if self.tree.get(id).status != NodeStatus::Conditional {
            return Ok(());
        }
        let path = self.tree.path(id);
        let mut steps = Vec::with_capacity(path.len());
        let mut scripts = HashMap::new();
        let mut used = Vec::new();
        for &n in &path {
            let node = self.tree.get(n);
            let Some(tactic) = &node.tactic else { continue };
            for hole in node.holes.iter() {
                let s = self
                    .subgoals
                    .find(&hole.goal)
                    .expect("a conditional node's holes are subgoals");
                let Some(proof) = self.subgoals.get(s).proof else {
                    return Ok(());
                };
                scripts.insert(goal_key(&hole.goal), self.tree.tactics_to(proof));
                used.push((s, proof));
            }
            let goals = node.holes.iter().map(|h| h.goal.clone()).collect();
            steps.push((tactic.to_string(), goals));
        }
        let tactics = assemble(&steps, &scripts).expect("every hole has its script");
        let check = self.check_proof(&tactics).await?;
        if check.verified {
            self.tree.get_mut(id).status = NodeStatus::Proof;
            for &(_, proof) in &used {
                self.tree.get_mut(proof).status = NodeStatus::Proof;
            }
            self.stats.proved_by_decomposition = 1;
            return Err(self.proof_end(Proof {
                node: id,
                check,
                tactics,
                subgoals: used.into_iter().map(|(_, proof)| proof).collect(),
            }));
        }
        self.stats.check_failures += 1;
        let node = self.tree.get_mut(id);
        node.status = NodeStatus::CheckFailed;
        let (parent, tactic) = (node.parent, node.tactic.clone());
        if let (Some(parent), Some(tactic)) = (parent, tactic) {
            self.fail(
                parent,
                tactic,
                AttemptOutcome::CheckFailed,
                &check.errors.join("\n"),
            );
        }
        for (s, _) in used {
            self.subgoals.get_mut(s).proof = None;
            self.requeue(s);
        }
        Ok(())
    }
}

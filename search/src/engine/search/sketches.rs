//! The planner in the search (`[planner]`): its requests for the nodes it plans, sent beside
//! the policy's, and each sketch of an answer in Lean, its sorries holes.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use formats::results::SearchStatus;
use lean_bridge::TacticOutcome;
use tokio::time::error::Elapsed;

use super::{Applied, AttemptOutcome, End, Search};
use crate::banned::is_banned;
use crate::candidates::Step;
use crate::engine::decompose::sorry_count;
use crate::engine::node::NodeId;
use crate::engine::timing::Phase;
use crate::planner::{sketch_of, Planner};
use crate::policy::{Completion, PolicyError};
use crate::templates::PromptInput;

/// The planner's answers for the nodes of one expansion.
pub(super) type PlanRequest<'a> = Pin<Box<dyn Future<Output = Vec<Planned>> + Send + 'a>>;

/// One planned node's answer, with the request's latency (ms).
pub(super) struct Planned {
    node: NodeId,
    answer: Result<Result<Vec<Vec<Completion>>, PolicyError>, Elapsed>,
    ms: f64,
}

impl<'a> Search<'a, '_> {
    /// The planner's requests for the nodes of `batch` it plans (in the main tree, at most
    /// `planner.max_depth` deep; each node is expanded once, so planned once), one request
    /// per node, or `None` when there is none to send. Each never outlives the theorem.
    pub(super) fn plan(&mut self, batch: &[NodeId]) -> Option<PlanRequest<'a>> {
        let planner: &'a Planner = self.params.planner?;
        let header = self.theorem.header_or(self.params.default_header);
        let prompts: Vec<(NodeId, String)> = batch
            .iter()
            .filter(|&&id| {
                let node = self.tree.get(id);
                node.subgoal.is_none() && node.depth <= planner.config.max_depth
            })
            .map(|&id| {
                let proof_before = self.tree.tactics_to(id);
                let node = self.tree.get(id);
                let input = PromptInput::new(self.theorem, header, &proof_before, &node.goals);
                let budget = planner.client.prompt_budget();
                (id, planner.template.render_within(&input, budget))
            })
            .collect();
        if prompts.is_empty() {
            return None;
        }
        self.stats.planner_calls += prompts.len() as u64;
        let (n, time_left, clock) = (
            planner.config.num_sketches,
            self.time_left(),
            self.params.clock,
        );
        Some(Box::pin(async move {
            let requests = prompts.into_iter().map(|(id, prompt)| async move {
                let started = clock.now();
                let prompts = [prompt];
                let answer =
                    tokio::time::timeout(time_left, planner.client.generate(&prompts, n)).await;
                let ms = (clock.now().saturating_sub(started)).as_secs_f64() * 1000.0;
                Planned {
                    node: id,
                    answer,
                    ms,
                }
            });
            futures_util::future::join_all(requests).await
        }))
    }

    /// Each planned node's sketches in Lean, best (first) first. A planner request that
    /// failed costs only its sketches.
    pub(super) async fn try_sketches(&mut self, planned: Vec<Planned>) -> Result<(), End> {
        for Planned { node, answer, ms } in planned {
            self.timer.plan_latency(ms);
            let completions = match answer {
                Ok(Ok(mut answers)) => answers.pop().unwrap_or_default(),
                Ok(Err(e)) => {
                    tracing::warn!(theorem = %self.theorem.name, error = %e, "planner request failed; the search goes on without its sketches");
                    self.stats.planner_failures += 1;
                    continue;
                }
                Err(_) => return Err(End::Status(SearchStatus::Timeout)),
            };
            let declaration = self
                .theorem
                .declaration_name()
                .unwrap_or(&self.theorem.name)
                .to_owned();
            let proof_before = self.tree.tactics_to(node);
            let mut seen = HashSet::new();
            for (rank, completion) in completions.iter().enumerate() {
                self.stats.planner_tokens_generated += u64::from(completion.completion_tokens);
                self.stats.planner_tokens_prompt += u64::from(completion.prompt_tokens);
                let Some(sketch) = sketch_of(&completion.text, &declaration, &proof_before) else {
                    continue;
                };
                if !seen.insert(sketch.clone()) {
                    continue;
                }
                self.stats.sketches += 1;
                if self.timed_out() {
                    return Err(End::Status(SearchStatus::Timeout));
                }
                self.try_sketch(node, &sketch, rank, completion.completion_tokens)
                    .await?;
            }
        }
        Ok(())
    }

    /// One sketch from `parent`'s state as one tactic block, its sorries the holes. Lean's
    /// answer with exactly the sketch's sorries as holes makes a node carrying them
    /// (conditional when no goal is left); a sketch without sorries is a step like any; an
    /// error, a timeout, or more holes than `search.max_subgoals` allows is `sketch_error`.
    async fn try_sketch(
        &mut self,
        parent: NodeId,
        sketch: &str,
        rank: usize,
        tokens: u32,
    ) -> Result<(), End> {
        let prior = self.params.planner.map_or(0.0, |p| p.config.prior);
        let tactic = self.interner.intern(sketch);
        let config = self.params.config;
        // Its sorries are the holes; any other banned identifier keeps it from Lean.
        let banned: Vec<String> = config
            .banned_tactics
            .iter()
            .filter(|b| b.as_str() != "sorry")
            .cloned()
            .collect();
        if is_banned(sketch, &banned) {
            self.stats.candidates_banned += 1;
            self.fail(parent, tactic, AttemptOutcome::Banned, "");
            return Ok(());
        }
        let sorries = sorry_count(sketch);
        let room = config
            .max_subgoals
            .saturating_sub(self.tree.get(parent).holes_on_path as usize);
        if sorries > room {
            self.stats.sketch_errors += 1;
            let message = format!(
                "{sorries} sorries, more than the {room} holes search.max_subgoals leaves here"
            );
            self.fail(parent, tactic, AttemptOutcome::SketchError, &message);
            return Ok(());
        }
        let state = self.tree.get(parent).state;
        self.timer.lap(self.params.clock, Phase::Engine);
        let outcome = self.session.apply_with_holes(state, sketch).await;
        self.timer.call(self.params.clock, Phase::Lean);
        self.stats.lean_calls += 1;
        let outcome = outcome.map_err(|e| End::Error(e.kind(), e.to_string()))?;
        let step = Step {
            tactic: sketch.to_owned(),
            logprob: prior * (rank + 1) as f64,
            tokens: tokens as usize,
        };
        let new = self.new_node(Arc::clone(&tactic), &step);
        let mut node = match outcome {
            TacticOutcome::Holes {
                state,
                goals,
                holes,
            } if holes.len() == sorries => new(goals, state, holes),
            TacticOutcome::Progress { state, goals } if sorries == 0 => {
                new(goals, state, Vec::new())
            }
            TacticOutcome::Complete { state, .. } | TacticOutcome::Incomplete { state, .. }
                if sorries == 0 =>
            {
                new(Vec::new(), state, Vec::new())
            }
            other => {
                self.stats.sketch_errors += 1;
                let message = match other {
                    TacticOutcome::Error { message } => message,
                    TacticOutcome::Timeout => "timeout".to_owned(),
                    TacticOutcome::Holes { holes, .. } => format!(
                        "Lean answered {} holes for the sketch's {sorries} sorries",
                        holes.len()
                    ),
                    other => format!("not a sketch Lean can take: {other:?}"),
                };
                self.fail(parent, tactic, AttemptOutcome::SketchError, &message);
                return Ok(());
            }
        };
        self.stats.sketch_nodes += 1;
        self.stats.holes_opened += node.holes.len() as u64;
        node.sketch = true;
        if node.goals.is_empty() {
            self.closed(parent, node).await?;
        } else if let Applied::Child(id) = self.add_open(parent, node) {
            self.unqueued.push(id);
        }
        Ok(())
    }
}

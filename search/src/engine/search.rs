//! Best-first search of one theorem.

use std::time::Duration;

use formats::results::{ErrorKind, SearchStatus};
use formats::stats::SearchStats;
use formats::NodeStatus;
use lean_bridge::{ProofCheck, TacticOutcome, Theorem};

use super::frontier::{priority, Frontier};
use super::node::{NewNode, NodeId, Tree};
use super::timing::{Clock, Phase, PhaseTimer};
use crate::candidates::{extract_candidates, start_column, Candidate};
use crate::config::SearchConfig;
use crate::env::{ProofEnv, ProofSession};
use crate::policy::Policy;
use crate::templates::{PromptInput, PromptTemplate};
use crate::value::ValueScorer;

/// What the engine needs besides the three backends.
pub struct SearchParams<'a> {
    pub config: &'a SearchConfig,
    pub template: &'a PromptTemplate,
    /// `[lean].header`, for prompts of theorems without their own header.
    pub default_header: &'a str,
    pub clock: &'a dyn Clock,
}

/// A tactic that did not lead to a new node.
#[derive(Debug, Clone, PartialEq)]
pub struct FailedAttempt {
    pub parent: NodeId,
    pub tactic: String,
    /// `error`, `timeout`, `incomplete`, `sorry`, `check_failed` or `transposition`.
    pub outcome: &'static str,
    pub message: String,
}

#[derive(Debug)]
pub struct SearchOutcome {
    pub status: SearchStatus,
    pub error: Option<String>,
    pub error_kind: Option<ErrorKind>,
    /// The verified whole-proof check, when proved.
    pub proof: Option<ProofCheck>,
    pub proof_tactics: Vec<String>,
    /// The proof's last node, when proved.
    pub proof_node: Option<NodeId>,
    pub tree: Tree,
    pub failed: Vec<FailedAttempt>,
    pub stats: SearchStats,
    /// Still open: the caller closes the books after its own bookkeeping.
    pub timer: PhaseTimer,
}

/// Searches one theorem. Never fails: infrastructure errors end the search with
/// `SearchStatus::Error` and the reason, keeping whatever tree was built.
pub async fn search_theorem(
    theorem: &Theorem,
    params: &SearchParams<'_>,
    policy: &dyn Policy,
    scorer: Option<&dyn ValueScorer>,
    env: &dyn ProofEnv,
) -> SearchOutcome {
    let clock = params.clock;
    let mut timer = PhaseTimer::new(clock.now());
    timer.lap(clock, Phase::Engine);
    let started = env.start(theorem).await;
    timer.lap(clock, Phase::Wait);
    let mut session = match started {
        Ok(session) => session,
        Err(e) => {
            return SearchOutcome {
                status: SearchStatus::Error,
                error: Some(e.to_string()),
                error_kind: Some(e.kind()),
                proof: None,
                proof_tactics: Vec::new(),
                proof_node: None,
                tree: Tree::default(),
                failed: Vec::new(),
                stats: SearchStats::default(),
                timer,
            };
        }
    };
    let (root_state, root_goals) = session.root();
    let tree = Tree::with_root(root_state, root_goals);
    let mut search = Search {
        theorem,
        params,
        policy,
        scorer,
        session: session.as_mut(),
        timer,
        tree,
        frontier: Frontier::default(),
        failed: Vec::new(),
        stats: SearchStats::default(),
    };
    let end = search.run().await;
    let Search {
        tree,
        failed,
        mut stats,
        mut timer,
        ..
    } = search;
    stats.nodes_created = tree.len() as u64;
    drop(session);
    timer.lap(clock, Phase::Engine);
    let (status, error, proof) = match end {
        End::Proved(node, check) => (SearchStatus::Proved, None, Some((node, check))),
        End::Status(status) => (status, None, None),
        End::Error(kind, message) => (SearchStatus::Error, Some((kind, message)), None),
    };
    let (error_kind, error) = error.map_or((None, None), |(k, m)| (Some(k), Some(m)));
    let (proof_node, proof) = proof.map_or((None, None), |(n, c)| (Some(n), Some(c)));
    SearchOutcome {
        status,
        error,
        error_kind,
        proof_tactics: proof_node.map(|n| tree.tactics_to(n)).unwrap_or_default(),
        proof,
        proof_node,
        tree,
        failed,
        stats,
        timer,
    }
}

enum End {
    Proved(NodeId, ProofCheck),
    Status(SearchStatus),
    /// The search could not go on; the kind says whose fault it was.
    Error(ErrorKind, String),
}

struct Search<'a, 'p> {
    theorem: &'a Theorem,
    params: &'a SearchParams<'p>,
    policy: &'a dyn Policy,
    scorer: Option<&'a dyn ValueScorer>,
    session: &'a mut dyn ProofSession,
    timer: PhaseTimer,
    tree: Tree,
    frontier: Frontier,
    failed: Vec<FailedAttempt>,
    stats: SearchStats,
}

impl Search<'_, '_> {
    fn clock(&self) -> &dyn Clock {
        self.params.clock
    }

    fn timed_out(&self) -> bool {
        self.time_left().is_zero()
    }

    /// What is left of `timeout_per_theorem`.
    fn time_left(&self) -> Duration {
        let limit = Duration::from_secs_f64(self.params.config.timeout_per_theorem);
        limit.saturating_sub(self.timer.elapsed(self.clock()))
    }

    fn elapsed_ms(&self) -> f64 {
        self.timer.elapsed(self.clock()).as_secs_f64() * 1000.0
    }

    async fn run(&mut self) -> End {
        if let Err(e) = self.score_and_queue(&[0]).await {
            return e;
        }
        let config = self.params.config;
        loop {
            if self.timed_out() {
                return End::Status(SearchStatus::Timeout);
            }
            let budget_left = config
                .max_nodes
                .saturating_sub(self.stats.nodes_expanded as usize);
            if budget_left == 0 {
                return End::Status(SearchStatus::NodeBudget);
            }
            let mut batch = Vec::new();
            while batch.len() < config.batch_expansion_size.min(budget_left) {
                match self.frontier.pop() {
                    Some(id) => batch.push(id),
                    None => break,
                }
            }
            if batch.is_empty() {
                return End::Status(SearchStatus::Exhausted);
            }
            if let Some(end) = self.expand(&batch).await {
                return end;
            }
        }
    }

    /// One expansion step: one generate request for the whole batch, then every surviving
    /// candidate of every node in Lean, then one value request for the new children.
    async fn expand(&mut self, batch: &[NodeId]) -> Option<End> {
        let header = self.theorem.header_or(self.params.default_header);
        let budget = self.policy.prompt_budget();
        let prompts: Vec<String> = batch
            .iter()
            .map(|&id| {
                let proof_before = self.tree.tactics_to(id);
                let node = self.tree.get(id);
                let input = PromptInput::new(self.theorem, header, &proof_before, &node.goals);
                self.params.template.render_within(&input, budget)
            })
            .collect();
        for &id in batch {
            self.tree.get_mut(id).status = NodeStatus::Expanded;
        }
        self.stats.nodes_expanded += batch.len() as u64;
        let n = self.params.config.num_candidates;
        let time_left = self.time_left();
        self.timer.lap(self.params.clock, Phase::Engine);
        // A generate call (retries and backoff included) never outlives the theorem: past
        // the deadline the request is dropped, which also frees the server's slot.
        let generated = tokio::time::timeout(time_left, self.policy.generate(&prompts, n)).await;
        self.timer.call(self.params.clock, Phase::Generate);
        self.stats.gen_calls += 1;
        let Ok(generated) = generated else {
            return Some(End::Status(SearchStatus::Timeout));
        };
        let completions = match generated {
            Ok(c) if c.len() == prompts.len() => c,
            Ok(c) => {
                return Some(End::Error(
                    ErrorKind::Infrastructure,
                    format!(
                        "policy returned completions for {} prompts, expected {}",
                        c.len(),
                        prompts.len()
                    ),
                ))
            }
            Err(e) => {
                return Some(End::Error(
                    ErrorKind::Infrastructure,
                    format!("generate: {e}"),
                ))
            }
        };
        let mut new_children = Vec::new();
        for ((&parent, prompt), completions) in batch.iter().zip(&prompts).zip(&completions) {
            let set = extract_candidates(
                completions,
                &self.params.config.banned_tactics,
                start_column(prompt),
            );
            self.stats.candidates_generated += set.generated as u64;
            self.stats.candidates_unique += set.unique as u64;
            self.stats.candidates_banned += set.banned_count as u64;
            self.stats.candidates_empty += set.empty_count as u64;
            let mut candidates = set.candidates;
            // Most likely first: a proof found early ends the step early.
            candidates.sort_by(|a, b| b.logprob.total_cmp(&a.logprob));
            for candidate in candidates {
                if self.timed_out() {
                    return Some(End::Status(SearchStatus::Timeout));
                }
                match self.apply(parent, candidate).await {
                    Ok(Applied::Child(id)) => new_children.push(id),
                    Ok(Applied::Nothing) => {}
                    Err(end) => return Some(end),
                }
            }
        }
        self.score_and_queue(&new_children).await.err()
    }

    async fn apply(&mut self, parent: NodeId, candidate: Candidate) -> Result<Applied, End> {
        let state = self.tree.get(parent).state;
        self.timer.lap(self.params.clock, Phase::Engine);
        let outcome = self.session.apply(state, &candidate.tactic).await;
        self.timer.call(self.params.clock, Phase::Lean);
        self.stats.lean_calls += 1;
        let outcome = outcome.map_err(|e| End::Error(e.kind(), e.to_string()))?;
        let created_ms = self.elapsed_ms();
        let new = |goals: Vec<String>, state, status| NewNode {
            tactic: candidate.tactic.clone(),
            goals,
            state,
            llm_logprob: candidate.logprob,
            tokens: candidate.tokens as u32,
            status,
            created_ms,
        };
        let fail = |outcome: &'static str, message: String| FailedAttempt {
            parent,
            tactic: candidate.tactic.clone(),
            outcome,
            message,
        };
        match outcome {
            TacticOutcome::Progress { state, goals } => {
                self.stats.candidates_passed_lean += 1;
                if let Some(existing) = self.tree.find_state(&goals) {
                    self.stats.transpositions += 1;
                    self.failed.push(fail(
                        "transposition",
                        format!("same goals as node {existing}"),
                    ));
                    return Ok(Applied::Nothing);
                }
                let depth = self.tree.get(parent).depth + 1;
                let status = if depth as usize >= self.params.config.max_depth {
                    NodeStatus::DepthLimit
                } else {
                    NodeStatus::Open
                };
                self.stats.max_depth_reached = self.stats.max_depth_reached.max(u64::from(depth));
                let id = self.tree.add_child(parent, new(goals, state, status));
                Ok(if status == NodeStatus::Open {
                    Applied::Child(id)
                } else {
                    Applied::Nothing
                })
            }
            TacticOutcome::Complete { state, .. } => {
                self.stats.candidates_passed_lean += 1;
                let id = self
                    .tree
                    .add_child(parent, new(Vec::new(), state, NodeStatus::Unverified));
                let tactics = self.tree.tactics_to(id);
                let check = self.check_proof(&tactics).await?;
                if check.verified {
                    self.tree.get_mut(id).status = NodeStatus::Proof;
                    return Err(End::Proved(id, check));
                }
                self.stats.check_failures += 1;
                self.failed
                    .push(fail("check_failed", check.errors.join("\n")));
                Ok(Applied::Nothing)
            }
            // The repl's status can be wrong with empty goals (repl PR #85): the whole-proof
            // check decides. Only a verified proof becomes a node.
            TacticOutcome::Incomplete { state, status } => {
                let mut tactics = self.tree.tactics_to(parent);
                tactics.push(candidate.tactic.clone());
                let check = self.check_proof(&tactics).await?;
                if check.verified {
                    self.stats.candidates_passed_lean += 1;
                    let id = self
                        .tree
                        .add_child(parent, new(Vec::new(), state, NodeStatus::Proof));
                    return Err(End::Proved(id, check));
                }
                self.stats.incomplete += 1;
                self.failed.push(fail(
                    "incomplete",
                    format!("{status}\n{}", check.errors.join("\n")),
                ));
                Ok(Applied::Nothing)
            }
            TacticOutcome::Sorry { goals } => {
                self.stats.sorries += 1;
                self.failed.push(fail(
                    "sorry",
                    format!("the tactic admitted {} goal(s) with sorry", goals.len()),
                ));
                Ok(Applied::Nothing)
            }
            TacticOutcome::Error { message } => {
                self.stats.lean_errors += 1;
                self.failed.push(fail("error", message));
                Ok(Applied::Nothing)
            }
            TacticOutcome::Timeout => {
                self.stats.lean_timeouts += 1;
                self.failed.push(fail("timeout", String::new()));
                Ok(Applied::Nothing)
            }
        }
    }

    /// The whole-proof check of `tactics`, timed as Lean.
    async fn check_proof(&mut self, tactics: &[String]) -> Result<ProofCheck, End> {
        self.timer.lap(self.params.clock, Phase::Engine);
        let check = self.session.check_proof(tactics).await;
        self.timer.call(self.params.clock, Phase::Lean);
        self.stats.lean_calls += 1;
        check.map_err(|e| End::Error(e.kind(), e.to_string()))
    }

    /// Scores `ids` in one value request (when a value model is configured) and queues them.
    async fn score_and_queue(&mut self, ids: &[NodeId]) -> Result<(), End> {
        if ids.is_empty() {
            return Ok(());
        }
        if let Some(scorer) = self.scorer {
            let states: Vec<String> = ids
                .iter()
                .map(|&id| self.tree.get(id).goals.clone())
                .collect();
            self.timer.lap(self.params.clock, Phase::Engine);
            let energies = scorer.score(&states).await;
            self.timer.call(self.params.clock, Phase::Ebm);
            self.stats.ebm_calls += 1;
            let energies = energies
                .map_err(|e| End::Error(ErrorKind::Infrastructure, format!("score: {e}")))?;
            if energies.len() != ids.len() {
                return Err(End::Error(
                    ErrorKind::Infrastructure,
                    format!(
                        "value model returned {} energies for {} states",
                        energies.len(),
                        ids.len()
                    ),
                ));
            }
            for (&id, energy) in ids.iter().zip(energies) {
                self.tree.get_mut(id).energy = Some(energy);
            }
        }
        for &id in ids {
            let node = self.tree.get_mut(id);
            node.score = priority(
                self.params.config,
                node.cum_logprob,
                node.depth,
                node.energy,
            );
            self.frontier.push(id, node.score);
        }
        Ok(())
    }
}

enum Applied {
    /// A new state to queue.
    Child(NodeId),
    Nothing,
}

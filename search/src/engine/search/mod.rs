//! Best-first search of one theorem: the loop, an expansion's samples in Lean, probes and
//! the value model's scores. Subgoal decomposition (`subgoals`) and the planner's sketches
//! (`sketches`) are the same search's, in files of their own.

mod sketches;
mod subgoals;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use formats::results::{ErrorKind, SearchStatus};
use formats::stats::SearchStats;
use formats::theorems::Theorem;
use formats::NodeStatus;
use lean_bridge::{ProofCheck, TacticOutcome};
use tokio::time::error::Elapsed;

use super::decompose::{lemma_statement, Subgoals};
use super::frontier::{priority, Frontier};
use super::interner::Interner;
use super::node::{text_hash, NewNode, NodeId, Tree};
use super::timing::{Clock, Phase, PhaseTimer};
use super::width::ExpansionWidth;
use crate::banned::is_banned;
use crate::candidates::{extract_candidates, start_column, tactic_sequence, Step};
use crate::config::{Expansion, SearchConfig};
use crate::env::{Hole, ProofEnv, ProofSession};
use crate::planner::Planner;
use crate::policy::{Completion, Policy, PolicyError};
use crate::templates::{PromptInput, PromptTemplate};
use crate::value::ValueScorer;

/// What the engine needs besides the three backends.
pub struct SearchParams<'a> {
    pub config: &'a SearchConfig,
    /// `[policy].template`, or `[policy].proof_template` when `config.expansion` is `proof`.
    pub template: &'a PromptTemplate,
    /// `[lean].header`, for prompts of theorems without their own header.
    pub default_header: &'a str,
    pub clock: &'a dyn Clock,
    /// Nodes popped per expansion when the sweep sets it (`sweep.fill_tail`); `None`:
    /// `config.batch_expansion_size`.
    pub width: Option<&'a ExpansionWidth>,
    /// `[planner]`, when it has servers: asked for sketches of the nodes it plans.
    pub planner: Option<&'a Planner>,
}

/// A tactic that did not lead to a new node. Its texts are the search's shared copies (see
/// `Interner`): a search holds about three of these per node, and the same tactics and Lean
/// messages recur, so this is most of a search's memory beyond the goals texts. The written
/// row ([`FailedRow`](formats::trajectory::FailedRow)) has the same texts.
#[derive(Debug, Clone, PartialEq)]
pub struct FailedAttempt {
    pub parent: NodeId,
    pub tactic: Arc<str>,
    pub outcome: AttemptOutcome,
    pub message: Arc<str>,
}

/// Why a tactic did not lead to a new node; [`AttemptOutcome::as_str`] is the `outcome`
/// column of the failed-attempt files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    Error,
    Timeout,
    Incomplete,
    Sorry,
    CheckFailed,
    Transposition,
    /// A tactic inside a whole-proof continuation that never reached Lean.
    Banned,
    /// A planner's sketch Lean refused for anything but its own sorries.
    SketchError,
}

impl AttemptOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Error => "error",
            AttemptOutcome::Timeout => "timeout",
            AttemptOutcome::Incomplete => "incomplete",
            AttemptOutcome::Sorry => "sorry",
            AttemptOutcome::CheckFailed => "check_failed",
            AttemptOutcome::Transposition => "transposition",
            AttemptOutcome::Banned => "banned",
            AttemptOutcome::SketchError => "sketch_error",
        }
    }
}

impl PartialEq<&str> for AttemptOutcome {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[derive(Debug)]
pub struct SearchOutcome {
    pub status: SearchStatus,
    pub error: Option<String>,
    pub error_kind: Option<ErrorKind>,
    /// The verified whole-proof check, when proved.
    pub proof: Option<ProofCheck>,
    pub proof_tactics: Vec<String>,
    /// The proof's last node, when proved (a conditional node's, for a proof assembled from
    /// subgoal proofs).
    pub proof_node: Option<NodeId>,
    /// The last node of each subgoal proof the proof was assembled from.
    pub proof_subgoals: Vec<NodeId>,
    /// Per subgoal search (in the order they opened): the conditional node that opened it.
    pub subgoal_openers: Vec<NodeId>,
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
                proof_subgoals: Vec::new(),
                subgoal_openers: Vec::new(),
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
        edges: HashMap::new(),
        interner: Interner::default(),
        subgoals: Subgoals::default(),
        unqueued: Vec::new(),
    };
    let end = search.run().await;
    let Search {
        tree,
        failed,
        mut stats,
        mut timer,
        subgoals,
        ..
    } = search;
    stats.nodes_created = tree.len() as u64;
    // Every node counts, the one that closes the proof too.
    stats.max_depth_reached = tree
        .nodes()
        .iter()
        .map(|n| u64::from(n.depth))
        .max()
        .unwrap_or(0);
    drop(session);
    timer.lap(clock, Phase::Engine);
    let (status, error, proof) = match end {
        End::Proved(proof) => (SearchStatus::Proved, None, Some(proof)),
        End::Status(status) => (status, None, None),
        End::Error(kind, message) => (SearchStatus::Error, Some((kind, message)), None),
    };
    let (error_kind, error) = error.map_or((None, None), |(k, m)| (Some(k), Some(m)));
    let (proof_node, proof, proof_tactics, proof_subgoals) = match proof {
        Some(p) => (Some(p.node), Some(p.check), p.tactics, p.subgoals),
        None => (None, None, Vec::new(), Vec::new()),
    };
    SearchOutcome {
        status,
        error,
        error_kind,
        proof_tactics,
        proof,
        proof_node,
        proof_subgoals,
        subgoal_openers: subgoals.list.iter().map(|s| s.opener).collect(),
        tree,
        failed,
        stats,
        timer,
    }
}

enum End {
    Proved(Proof),
    Status(SearchStatus),
    /// The search could not go on; the kind says whose fault it was.
    Error(ErrorKind, String),
}

/// A proof that passed the whole-proof check.
struct Proof {
    /// Its last node (a conditional node's, when assembled from subgoal proofs).
    node: NodeId,
    check: ProofCheck,
    /// The top-level tactics, subgoal scripts inside their `have`s.
    tactics: Vec<String>,
    /// The last node of each subgoal proof it was assembled from.
    subgoals: Vec<NodeId>,
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
    /// Proof mode's trie: (node, hash of a normalised tactic) -> the node it led to, or
    /// `None` when Lean refused it there. A replayed tactic found here costs no Lean call.
    /// A 64-bit hash collision could only skip a tactic, never make a proof: proofs are
    /// always checked whole.
    edges: HashMap<(NodeId, u64), Option<NodeId>>,
    /// The shared copies of this search's tactics and failure messages.
    interner: Interner,
    /// The subgoal searches and the cache of proved subgoals (`search.decompose`).
    subgoals: Subgoals,
    /// Open nodes made outside an expansion's samples (subgoal roots, sketch nodes), to
    /// probe, score and queue with its children.
    unqueued: Vec<NodeId>,
}

impl<'a> Search<'a, '_> {
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

    /// Records a failed attempt, sharing its message with earlier ones of the same text.
    fn fail(&mut self, parent: NodeId, tactic: Arc<str>, outcome: AttemptOutcome, message: &str) {
        let message = self.interner.intern(message);
        self.failed.push(FailedAttempt {
            parent,
            tactic,
            outcome,
            message,
        });
    }

    /// The end of a search whose proof ends at `id` in the main tree.
    fn proved(&mut self, id: NodeId, check: ProofCheck) -> End {
        let tactics = self.tree.tactics_to(id);
        self.proof_end(Proof {
            node: id,
            check,
            tactics,
            subgoals: Vec::new(),
        })
    }

    /// The end of a search with `proof`, noting whether a planner's sketch is on its path.
    fn proof_end(&mut self, proof: Proof) -> End {
        let sketched = self
            .tree
            .path(proof.node)
            .iter()
            .any(|&n| self.tree.get(n).sketch);
        self.stats.proved_by_sketch = u64::from(sketched);
        End::Proved(proof)
    }

    async fn run(&mut self) -> End {
        if let Err(e) = self.score_and_queue(&[0]).await {
            return e;
        }
        // `search.speculate`: the request already sent for the nodes popped next.
        let mut ahead: Option<Speculation<'a>> = None;
        loop {
            if self.timed_out() {
                return End::Status(SearchStatus::Timeout);
            }
            let take = self.batch_size();
            if take == 0 {
                return End::Status(SearchStatus::NodeBudget);
            }
            let mut answered = None;
            let mut batch = Vec::new();
            if let Some(spec) = ahead.take() {
                if spec.nodes.len() == take && !self.frontier.outranks(&spec.nodes) {
                    batch = spec.nodes.iter().map(|&(id, _)| id).collect();
                    answered = Some(self.answer(spec).await);
                } else {
                    self.missed(spec);
                }
            }
            self.pop_into(&mut batch, take);
            if batch.is_empty() {
                return End::Status(SearchStatus::Exhausted);
            }
            match self.expand(&batch, answered).await {
                Ok(next) => ahead = next,
                Err(end) => return end,
            }
        }
    }

    /// Nodes popped per expansion: the sweep's width when it sets one (`sweep.fill_tail`),
    /// at most what the node budget has left (0 when it is spent).
    fn batch_size(&self) -> usize {
        let width = self
            .params
            .width
            .map_or(self.params.config.batch_expansion_size, ExpansionWidth::get);
        let budget_left = self
            .params
            .config
            .max_nodes
            .saturating_sub(self.stats.nodes_expanded as usize);
        width.min(budget_left)
    }

    /// Pops the best frontier nodes into `batch` until it holds `take` or the frontier is
    /// empty. Nodes of a subgoal search nothing needs now are dropped (see [`Search::wanted`]).
    fn pop_into(&mut self, batch: &mut Vec<NodeId>, take: usize) {
        while batch.len() < take {
            match self.frontier.pop() {
                Some(id) if self.wanted(id) => batch.push(id),
                Some(_) => {}
                None => break,
            }
        }
    }

    fn prompts(&self, batch: &[NodeId]) -> Vec<String> {
        let header = self.theorem.header_or(self.params.default_header);
        let budget = self.policy.prompt_budget();
        batch
            .iter()
            .map(|&id| {
                let proof_before = self.tree.tactics_to(id);
                let node = self.tree.get(id);
                let mut input = PromptInput::new(self.theorem, header, &proof_before, &node.goals);
                // A subgoal is prompted as a lemma of its own, its goal shown at its root too.
                if let Some(s) = node.subgoal {
                    let name = self
                        .theorem
                        .declaration_name()
                        .unwrap_or(&self.theorem.name);
                    let name = format!("{name}_subgoal_{}", s + 1);
                    input.statement = lemma_statement(&name, &self.subgoals.get(s).goal);
                    input.at_root = false;
                }
                self.params.template.render_within(&input, budget)
            })
            .collect()
    }

    /// One generate request for `prompts` that never outlives the theorem: past the deadline
    /// the request is dropped, which also frees the server's slot.
    fn request(&self, prompts: Vec<String>) -> Request<'a> {
        let policy = self.policy;
        let n = self.params.config.num_candidates;
        let time_left = self.time_left();
        Box::pin(async move { tokio::time::timeout(time_left, policy.generate(&prompts, n)).await })
    }

    /// A speculation whose nodes are still the best: its answer, waited for if need be (the
    /// wait is generate time; the request's time before it overlapped Lean's).
    async fn answer(&mut self, spec: Speculation<'a>) -> (Vec<String>, Generated) {
        let answer = match spec.answer {
            Some(answer) => answer,
            None => {
                self.timer.lap(self.params.clock, Phase::Engine);
                let answer = spec.request.await;
                self.timer.lap(self.params.clock, Phase::Generate);
                answer
            }
        };
        (spec.prompts, answer)
    }

    /// A speculation this expansion's children outranked: its nodes go back to the frontier
    /// and its request is dropped (cancelled, if still in flight); tokens already written
    /// count as never replayed.
    fn missed(&mut self, spec: Speculation<'a>) {
        self.stats.speculation_misses += 1;
        if let Some(Ok(Ok(completions))) = &spec.answer {
            for c in completions.iter().flatten() {
                self.stats.tokens_generated += u64::from(c.completion_tokens);
                self.stats.tokens_prompt += u64::from(c.prompt_tokens);
                self.stats.tokens_unreplayed += u64::from(c.completion_tokens);
            }
        }
        for &(id, priority) in &spec.nodes {
            self.frontier.push(id, priority);
        }
    }

    /// `search.speculate`: pops the nodes the next expansion would take if this one added
    /// no better children, and sends their request now.
    fn speculate(&mut self) -> Option<Speculation<'a>> {
        let mut ids = Vec::new();
        self.pop_into(&mut ids, self.batch_size());
        if ids.is_empty() {
            return None;
        }
        let nodes = ids
            .iter()
            .map(|&id| (id, self.tree.get(id).score))
            .collect();
        let prompts = self.prompts(&ids);
        self.stats.gen_calls += 1;
        self.stats.speculated += 1;
        Some(Speculation {
            nodes,
            request: self.request(prompts.clone()),
            prompts,
            answer: None,
        })
    }

    /// One expansion step: one generate request for the whole batch (or the answer of the
    /// speculation that sent it ahead), then the samples in Lean (as first tactics, or as
    /// whole continuations replayed into the tree), then one value request for the new
    /// children. With `search.speculate`, returns the request sent for the next nodes while
    /// Lean worked.
    async fn expand(
        &mut self,
        batch: &[NodeId],
        answered: Option<(Vec<String>, Generated)>,
    ) -> Result<Option<Speculation<'a>>, End> {
        for &id in batch {
            self.tree.get_mut(id).status = NodeStatus::Expanded;
        }
        self.stats.nodes_expanded += batch.len() as u64;
        // The planner's requests go out with the policy's and are waited for beside it.
        let mut plan = self.plan(batch);
        let clock = self.params.clock;
        let mut planned = None;
        let (prompts, generated) = match answered {
            Some(answered) => answered,
            None => {
                let prompts = self.prompts(batch);
                let request = self.request(prompts.clone());
                self.timer.lap(clock, Phase::Engine);
                let generated = match plan.take() {
                    None => {
                        let generated = request.await;
                        self.timer.call(clock, Phase::Generate);
                        generated
                    }
                    Some(plan) => {
                        let policy = async {
                            let generated = request.await;
                            (generated, clock.now())
                        };
                        let ((generated, answered_at), plans) = tokio::join!(policy, plan);
                        self.timer.call_until(answered_at, Phase::Generate);
                        self.timer.lap(clock, Phase::Plan);
                        planned = Some(plans);
                        generated
                    }
                };
                self.stats.gen_calls += 1;
                (prompts, generated)
            }
        };
        if let Some(plan) = plan {
            self.timer.lap(clock, Phase::Engine);
            planned = Some(plan.await);
            self.timer.lap(clock, Phase::Plan);
        }
        if let Some(planned) = planned {
            self.try_sketches(planned).await?;
        }
        let Ok(generated) = generated else {
            return Err(End::Status(SearchStatus::Timeout));
        };
        let completions = match generated {
            Ok(c) if c.len() == prompts.len() => c,
            Ok(c) => {
                return Err(End::Error(
                    ErrorKind::Infrastructure,
                    format!(
                        "policy returned completions for {} prompts, expected {}",
                        c.len(),
                        prompts.len()
                    ),
                ))
            }
            Err(e) => {
                return Err(End::Error(
                    ErrorKind::Infrastructure,
                    format!("generate: {e}"),
                ))
            }
        };
        for c in completions.iter().flatten() {
            self.stats.tokens_generated += u64::from(c.completion_tokens);
            self.stats.tokens_prompt += u64::from(c.prompt_tokens);
        }
        let speculate = self.params.config.speculate
            || self.params.width.is_some_and(ExpansionWidth::speculate);
        let mut ahead = if speculate { self.speculate() } else { None };
        match ahead.as_mut() {
            None => self.try_samples(batch, &prompts, &completions).await?,
            // Lean works while the speculated request is in flight; a search that ends here
            // drops (cancels) it.
            Some(spec) => {
                let work = self.try_samples(batch, &prompts, &completions);
                tokio::pin!(work);
                loop {
                    tokio::select! {
                        done = &mut work => break done?,
                        answer = &mut spec.request, if spec.answer.is_none() => {
                            spec.answer = Some(answer);
                        }
                    }
                }
            }
        }
        Ok(ahead)
    }

    /// The samples of one expansion in Lean, then the new children scored and queued.
    async fn try_samples(
        &mut self,
        batch: &[NodeId],
        prompts: &[String],
        completions: &[Vec<Completion>],
    ) -> Result<(), End> {
        let mut new_children = Vec::new();
        for ((&parent, prompt), completions) in batch.iter().zip(prompts).zip(completions) {
            let column = start_column(prompt);
            match self.params.config.expansion {
                Expansion::Tactic => {
                    self.try_first_tactics(parent, completions, column, &mut new_children)
                        .await?
                }
                Expansion::Proof => {
                    self.try_continuations(parent, completions, column, &mut new_children)
                        .await?
                }
            }
        }
        self.score_and_queue(&new_children).await
    }

    /// Tactic mode: each distinct first tactic, most likely first, applied at `parent`.
    async fn try_first_tactics(
        &mut self,
        parent: NodeId,
        completions: &[Completion],
        column: usize,
        new_children: &mut Vec<NodeId>,
    ) -> Result<(), End> {
        let set = extract_candidates(completions, &self.params.config.banned_tactics, column);
        self.stats.candidates_generated += set.generated as u64;
        self.stats.candidates_unique += set.unique as u64;
        self.stats.candidates_banned += set.banned_count as u64;
        self.stats.candidates_empty += set.empty_count as u64;
        let generated: u64 = completions
            .iter()
            .map(|c| u64::from(c.completion_tokens))
            .sum();
        let used: u64 = set.candidates.iter().map(|c| c.tokens as u64).sum();
        self.stats.tokens_unreplayed += generated.saturating_sub(used);
        let mut candidates = set.candidates;
        // Most likely first: a proof found early ends the step early.
        candidates.sort_by(|a, b| b.logprob.total_cmp(&a.logprob));
        for candidate in candidates {
            if self.timed_out() {
                return Err(End::Status(SearchStatus::Timeout));
            }
            let step = Step {
                tactic: candidate.tactic,
                logprob: candidate.logprob,
                tokens: candidate.tokens,
            };
            if let Applied::Child(id) = self.apply(parent, &step).await? {
                new_children.push(id);
            }
        }
        Ok(())
    }

    /// Proof mode: each distinct continuation, most likely first, split into its tactics and
    /// replayed from `parent` (or, for pass@n, checked whole).
    async fn try_continuations(
        &mut self,
        parent: NodeId,
        completions: &[Completion],
        column: usize,
        new_children: &mut Vec<NodeId>,
    ) -> Result<(), End> {
        self.stats.candidates_generated += completions.len() as u64;
        let mut seen: HashSet<Vec<String>> = HashSet::new();
        let mut continuations = Vec::new();
        for completion in completions {
            let steps = tactic_sequence(completion, column);
            let generated = u64::from(completion.completion_tokens);
            if steps.is_empty() {
                self.stats.candidates_empty += 1;
                self.stats.tokens_unreplayed += generated;
            } else if !seen.insert(steps.iter().map(|s| s.tactic.clone()).collect()) {
                // Identical continuations are replayed once.
                self.stats.tokens_unreplayed += generated;
            } else {
                continuations.push((steps, generated));
            }
        }
        self.stats.candidates_unique += continuations.len() as u64;
        let total = |steps: &[Step]| steps.iter().map(|s| s.logprob).sum::<f64>();
        continuations.sort_by(|a, b| total(&b.0).total_cmp(&total(&a.0)));
        let pass_at_n = self.params.config.pass_at_n().is_some();
        for (steps, generated) in continuations {
            if self.timed_out() {
                return Err(End::Status(SearchStatus::Timeout));
            }
            let used = if pass_at_n {
                self.check_whole(parent, &steps).await?
            } else {
                self.replay(parent, &steps, new_children).await?
            };
            self.stats.tokens_unreplayed += generated.saturating_sub(used as u64);
        }
        Ok(())
    }

    /// Replays one continuation from `start`: each tactic goes to Lean unless the trie
    /// already knows where it leads from the current node; the replay stops at the first
    /// failing or banned tactic, at the depth limit, or with a proof. Returns the tokens of
    /// the tactics it walked.
    async fn replay(
        &mut self,
        start: NodeId,
        steps: &[Step],
        new_children: &mut Vec<NodeId>,
    ) -> Result<usize, End> {
        let mut at = start;
        let mut used = 0;
        for step in steps {
            if is_banned(&step.tactic, &self.params.config.banned_tactics) {
                self.stats.candidates_banned += 1;
                let tactic = self.interner.intern(&step.tactic);
                self.fail(at, tactic, AttemptOutcome::Banned, "");
                break;
            }
            used += step.tokens;
            let key = (at, text_hash(&step.tactic));
            let next = match self.edges.get(&key) {
                Some(known) => {
                    self.stats.replay_reused += 1;
                    *known
                }
                None => {
                    if self.timed_out() {
                        return Err(End::Status(SearchStatus::Timeout));
                    }
                    let next = match self.apply(at, step).await? {
                        Applied::Child(id) => {
                            new_children.push(id);
                            Some(id)
                        }
                        Applied::Leaf(id) | Applied::Transposition(id) => Some(id),
                        Applied::Failed => None,
                    };
                    self.edges.insert(key, next);
                    next
                }
            };
            match next {
                // Transpositions go on from the node the tree already has.
                Some(id) if self.tree.get(id).status.is_terminal() => break,
                Some(id) if self.tree.get(id).depth as usize >= self.params.config.max_depth => {
                    break
                }
                Some(id) => at = id,
                None => break,
            }
        }
        Ok(used)
    }

    /// pass@n: the whole continuation checked as one command, as papers judge a sample.
    /// Returns the tokens of the tactics checked.
    async fn check_whole(&mut self, parent: NodeId, steps: &[Step]) -> Result<usize, End> {
        let banned = &self.params.config.banned_tactics;
        let tactic = steps
            .iter()
            .map(|s| s.tactic.as_str())
            .collect::<Vec<_>>()
            .join("\n");
        let tactic = self.interner.intern(&tactic);
        if let Some(step) = steps.iter().find(|s| is_banned(&s.tactic, banned)) {
            self.stats.candidates_banned += 1;
            let message = format!("uses a banned identifier in `{}`", step.tactic);
            self.fail(parent, tactic, AttemptOutcome::Banned, &message);
            return Ok(0);
        }
        let mut tactics = self.tree.tactics_to(parent);
        tactics.extend(steps.iter().map(|s| s.tactic.clone()));
        let check = self.check_proof(&tactics).await?;
        if check.verified {
            let node = NewNode {
                tactic,
                goals: Vec::new(),
                state: self.tree.get(parent).state,
                llm_logprob: steps.iter().map(|s| s.logprob).sum(),
                tokens: steps.iter().map(|s| s.tokens as u32).sum(),
                status: NodeStatus::Proof,
                created_ms: self.elapsed_ms(),
                holes: Vec::new(),
                sketch: false,
            };
            let id = self.tree.add_child(parent, node);
            return Err(self.proved(id, check));
        }
        self.stats.check_failures += 1;
        self.fail(
            parent,
            tactic,
            AttemptOutcome::CheckFailed,
            &check.errors.join("\n"),
        );
        Ok(steps.iter().map(|s| s.tokens).sum())
    }

    async fn apply(&mut self, parent: NodeId, step: &Step) -> Result<Applied, End> {
        let state = self.tree.get(parent).state;
        self.timer.lap(self.params.clock, Phase::Engine);
        let outcome = self.session.apply(state, &step.tactic).await;
        self.timer.call(self.params.clock, Phase::Lean);
        self.stats.lean_calls += 1;
        let outcome = outcome.map_err(|e| End::Error(e.kind(), e.to_string()))?;
        let tactic = self.interner.intern(&step.tactic);
        let new = self.new_node(Arc::clone(&tactic), step);
        // In a subgoal search, or on a path carrying holes, empty goals are no proof yet.
        let decomposing = {
            let p = self.tree.get(parent);
            p.subgoal.is_some() || p.holes_on_path > 0
        };
        let hole = match outcome {
            TacticOutcome::Error { .. } | TacticOutcome::Timeout => self.hole_for(parent, step),
            _ => None,
        };
        let applied = match outcome {
            TacticOutcome::Progress { state, goals } => {
                self.stats.candidates_passed_lean += 1;
                self.add_open(parent, new(goals, state, Vec::new()))
            }
            TacticOutcome::Complete { state, .. } => {
                self.stats.candidates_passed_lean += 1;
                self.closed(parent, new(Vec::new(), state, Vec::new()))
                    .await?
            }
            TacticOutcome::Incomplete { state, .. } if decomposing => {
                self.stats.candidates_passed_lean += 1;
                self.closed(parent, new(Vec::new(), state, Vec::new()))
                    .await?
            }
            // The repl's status can be wrong with empty goals (repl PR #85): the whole-proof
            // check decides. Only a verified proof becomes a node.
            TacticOutcome::Incomplete { state, status } => {
                let mut tactics = self.tree.tactics_to(parent);
                tactics.push(step.tactic.clone());
                let check = self.check_proof(&tactics).await?;
                if check.verified {
                    self.stats.candidates_passed_lean += 1;
                    let mut node = new(Vec::new(), state, Vec::new());
                    node.status = NodeStatus::Proof;
                    let id = self.tree.add_child(parent, node);
                    return Err(self.proved(id, check));
                }
                self.stats.incomplete += 1;
                let message = format!("{status}\n{}", check.errors.join("\n"));
                self.fail(parent, tactic, AttemptOutcome::Incomplete, &message);
                Applied::Failed
            }
            TacticOutcome::Sorry { goals } => self.admitted(parent, tactic, goals.len()),
            // Only `apply_with_holes` reads sorries as holes; the model's are never a node.
            TacticOutcome::Holes { holes, .. } => self.admitted(parent, tactic, holes.len()),
            TacticOutcome::Error { message } => {
                self.stats.lean_errors += 1;
                self.fail(parent, tactic, AttemptOutcome::Error, &message);
                Applied::Failed
            }
            TacticOutcome::Timeout => {
                self.stats.lean_timeouts += 1;
                self.fail(parent, tactic, AttemptOutcome::Timeout, "");
                Applied::Failed
            }
        };
        match hole {
            Some(hole) => self.open_hole(parent, step, &hole).await,
            None => Ok(applied),
        }
    }

    /// A tactic that admitted `count` goals with `sorry`: a failed attempt.
    fn admitted(&mut self, parent: NodeId, tactic: Arc<str>, count: usize) -> Applied {
        self.stats.sorries += 1;
        let message = format!("the tactic admitted {count} goal(s) with sorry");
        self.fail(parent, tactic, AttemptOutcome::Sorry, &message);
        Applied::Failed
    }

    /// What a node made by `step` under `tactic` looks like, given what Lean answered:
    /// `(goals, state, holes)` to an open [`NewNode`].
    fn new_node<'t>(
        &self,
        tactic: Arc<str>,
        step: &'t Step,
    ) -> impl Fn(Vec<String>, crate::env::StateId, Vec<Hole>) -> NewNode + 't {
        let created_ms = self.elapsed_ms();
        move |goals, state, holes| NewNode {
            tactic: Arc::clone(&tactic),
            goals,
            state,
            llm_logprob: step.logprob,
            tokens: step.tokens as u32,
            status: NodeStatus::Open,
            created_ms,
            holes,
            sketch: false,
        }
    }

    /// A node with goals left: a transposition when its search already has the goals
    /// (reported as a failed attempt at `parent`), a leaf at the depth limit, else open.
    fn add_open(&mut self, parent: NodeId, mut new: NewNode) -> Applied {
        if let Some(existing) = self.tree.transposition(parent, &new.goals, new.holes.len()) {
            self.stats.transpositions += 1;
            let message = format!("same goals as node {existing}");
            self.fail(parent, new.tactic, AttemptOutcome::Transposition, &message);
            return Applied::Transposition(existing);
        }
        let depth = self.tree.get(parent).depth + 1;
        if depth as usize >= self.params.config.max_depth {
            new.status = NodeStatus::DepthLimit;
        }
        let id = self.tree.add_child(parent, new);
        if self.tree.get(id).status == NodeStatus::Open {
            Applied::Child(id)
        } else {
            Applied::Leaf(id)
        }
    }

    /// The whole-proof check of the script ending at the complete node `id`: a pass ends the
    /// search (`Err(End::Proved)`), a rejection returns Lean's errors.
    async fn check(&mut self, id: NodeId) -> Result<Option<String>, End> {
        let tactics = self.tree.tactics_to(id);
        let check = self.check_proof(&tactics).await?;
        if check.verified {
            self.tree.get_mut(id).status = NodeStatus::Proof;
            return Err(self.proved(id, check));
        }
        self.stats.check_failures += 1;
        Ok(Some(check.errors.join("\n")))
    }

    /// The whole-proof check of `tactics`, timed as Lean.
    async fn check_proof(&mut self, tactics: &[String]) -> Result<ProofCheck, End> {
        self.timer.lap(self.params.clock, Phase::Engine);
        let check = self.session.check_proof(tactics).await;
        self.timer.call(self.params.clock, Phase::Lean);
        self.stats.lean_calls += 1;
        check.map_err(|e| End::Error(e.kind(), e.to_string()))
    }

    /// `search.probe_tactics` at `id`, each under `search.probe_timeout`: one that closes
    /// every goal goes where closed goals go ([`Search::closed`]: the whole-proof check, or
    /// a subgoal proved, or a conditional node); progress adds no child (a probe has no
    /// log-prob to rank it by), and failures are not the policy's, so they are not recorded.
    async fn probe(&mut self, id: NodeId) -> Result<(), End> {
        let config = self.params.config;
        let timeout = Duration::from_secs_f64(config.probe_timeout);
        for probe in &config.probe_tactics {
            if self.timed_out() {
                return Err(End::Status(SearchStatus::Timeout));
            }
            if self.tree.get(id).subgoal.is_some() && !self.wanted(id) {
                return Ok(());
            }
            let state = self.tree.get(id).state;
            self.timer.lap(self.params.clock, Phase::Engine);
            let outcome = self.session.apply_within(state, probe, timeout).await;
            self.timer.call(self.params.clock, Phase::Lean);
            self.stats.lean_calls += 1;
            self.stats.probe_calls += 1;
            let outcome = outcome.map_err(|e| End::Error(e.kind(), e.to_string()))?;
            // As for policy tactics, empty goals go on whatever the repl's status says.
            if let TacticOutcome::Complete { state, .. } | TacticOutcome::Incomplete { state, .. } =
                outcome
            {
                let node = NewNode {
                    tactic: self.interner.intern(probe),
                    goals: Vec::new(),
                    state,
                    llm_logprob: 0.0,
                    tokens: 0,
                    status: NodeStatus::Unverified,
                    created_ms: self.elapsed_ms(),
                    holes: Vec::new(),
                    sketch: false,
                };
                let n = self.tree.get(id);
                let whole = n.subgoal.is_none() && n.holes_on_path == 0;
                self.stats.probe_proofs = u64::from(whole);
                self.closed(id, node).await?;
                self.stats.probe_proofs = 0;
            }
        }
        Ok(())
    }

    /// Scores `ids` in one value request (when a value model is configured) and queues them,
    /// with the roots of subgoal searches opened meanwhile. Probes each first (see
    /// [`Search::probe`]); a probe can open subgoal searches too.
    async fn score_and_queue(&mut self, ids: &[NodeId]) -> Result<(), End> {
        let mut ids = ids.to_vec();
        let mut probed = 0;
        loop {
            ids.append(&mut self.unqueued);
            if probed == ids.len() {
                break;
            }
            if !self.params.config.probe_tactics.is_empty() {
                for &id in &ids[probed..] {
                    self.probe(id).await?;
                }
            }
            probed = ids.len();
        }
        if ids.is_empty() {
            return Ok(());
        }
        if let Some(scorer) = self.scorer {
            let states: Vec<String> = ids
                .iter()
                .map(|&id| self.tree.get(id).goals.to_string())
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
                self.stats.ebm_unscored += u64::from(energy.is_none());
                self.tree.get_mut(id).energy = energy;
            }
        }
        let scale = self.scorer.and_then(|s| s.energy_scale());
        for &id in &ids {
            let node = self.tree.get(id);
            // A subgoal node ranks by its own path plus what the node it would finish is worth.
            let base = node.subgoal.map_or(0.0, |s| self.subgoals.get(s).base);
            let energy = node.energy.map(|e| scale.map_or(e, |s| s.standardise(e)));
            let score = base + priority(self.params.config, node.cum_logprob, node.depth, energy);
            self.tree.get_mut(id).score = score;
            self.frontier.push(id, score);
        }
        Ok(())
    }
}

/// What a generate request returns, under the theorem's deadline.
type Generated = Result<Result<Vec<Vec<Completion>>, PolicyError>, Elapsed>;
type Request<'a> = Pin<Box<dyn Future<Output = Generated> + Send + 'a>>;

/// A generate request sent ahead (`search.speculate`) for the nodes the frontier would pop
/// next, which are out of the frontier until it is used or missed.
struct Speculation<'a> {
    /// (id, priority) of each node.
    nodes: Vec<(NodeId, f64)>,
    prompts: Vec<String>,
    request: Request<'a>,
    /// Set when the request finished while Lean was still working.
    answer: Option<Generated>,
}

enum Applied {
    /// A new open node, to queue.
    Child(NodeId),
    /// A new node at the depth limit, not queued.
    Leaf(NodeId),
    /// Goals the tree already has, at this node.
    Transposition(NodeId),
    /// Lean (or the whole-proof check) refused it.
    Failed,
}

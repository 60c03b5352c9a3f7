//! One theorem's Lean session. States are kept as tactic paths from the root, so when the
//! worker is replaced (fault or recycling) any state can be rebuilt on the fresh process by
//! replaying the theorem start and its path — lazily, only when it is used again. A hole's
//! state (the proof state of a sorry the search sent, [`Session::apply_with_holes`]) is on no
//! tactic path: it is rebuilt by rebuilding the state the tactic was sent at, sending the
//! tactic again and taking the same sorry of the answer.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::cached_worker::tactic_timeout;
use crate::error::{Failure, LeanError};
use crate::lease::Lease;
use crate::one_tactic::tactic_block;
use crate::outcome::{Hole, ProofCheck, StateId, TacticOutcome};
use crate::proof_check::{check_proof, indent_tactics};
use crate::protocol::{error_messages, Reply, TacticResponse};
use crate::worker::Fault;
use formats::theorems::Theorem;

/// `proofStatus` of a finished proof (repl >= v4.19).
const COMPLETED: &str = "Completed";

pub struct Session {
    lease: Lease,
    theorem: Theorem,
    /// `StateId(i)` is `nodes[i]`; node 0 is the root.
    nodes: Vec<Node>,
    /// StateId -> `proofState` on the current worker, valid for `live_generation` only.
    live: HashMap<StateId, u32>,
    live_generation: u64,
}

struct Node {
    parent: Option<StateId>,
    /// The tactic that led here from `parent` (empty at the root).
    tactic: String,
    /// The goals Lean showed here: a replay must reproduce them.
    goals: Vec<String>,
    /// How `tactic`'s answer leads here.
    link: Link,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Link {
    /// The answer's `proofState`. `admits`: the answer also carries the search's own sorries
    /// (a hole tactic), which a replay of this step must therefore accept.
    Result { admits: bool },
    /// The answer's `sorries[i].proofState`: a hole, off every tactic path.
    Sorry(usize),
}

/// Where a fault struck: a timeout of the tactic itself is Lean's verdict on that tactic
/// (`TacticOutcome::Timeout`); any other fault is the infrastructure's.
enum Step {
    Replay(Failure),
    Tactic(Fault),
}

impl Session {
    pub(crate) async fn start(mut lease: Lease, theorem: Theorem) -> Result<Self, LeanError> {
        // Without a name `#print axioms` cannot run, so no proof could ever be verified:
        // say so now rather than after the search.
        if let Err(message) = theorem.declaration_name() {
            return Err(LeanError::Statement { message });
        }
        let mut statement_faulted = false;
        loop {
            let pool = Arc::clone(lease.pool());
            let header = theorem.header_or(&pool.config().header);
            let worker = lease.worker()?;
            match worker.start(&theorem, pool.config()).await {
                Ok(root) => {
                    lease.progress();
                    let mut session = Self {
                        live_generation: lease.generation(),
                        lease,
                        theorem,
                        nodes: vec![Node {
                            parent: None,
                            tactic: String::new(),
                            goals: root.goals,
                            link: Link::Result { admits: false },
                        }],
                        live: HashMap::new(),
                    };
                    session.live.insert(StateId(0), root.proof_state);
                    return Ok(session);
                }
                Err(Failure::Final(e)) => return Err(e),
                Err(Failure::Fault(fault)) => {
                    // The header was in, so the statement itself was being elaborated. Twice
                    // on fresh workers is the statement's doing, like a tactic's crash.
                    let on_statement = worker.has_header(header) && !fault.is_lost_state();
                    if on_statement && statement_faulted {
                        let message = format!(
                            "the Lean REPL failed twice elaborating this statement, the last time: {fault}"
                        );
                        lease.fault(fault, false).await?;
                        return Err(LeanError::Statement { message });
                    }
                    statement_faulted |= on_statement;
                    lease.fault(fault, true).await?
                }
            }
        }
    }

    pub fn root(&self) -> (StateId, &[String]) {
        (StateId(0), &self.nodes[0].goals)
    }

    pub fn theorem(&self) -> &Theorem {
        &self.theorem
    }

    /// Worker faults (timeouts, crashes, garbage) this session survived.
    pub fn faults(&self) -> u32 {
        self.lease.faults()
    }

    /// The tactics from the root to `state`.
    pub fn tactic_path(&self, state: StateId) -> Result<Vec<String>, LeanError> {
        self.node(state)?;
        Ok(self.path_from(None, state))
    }

    pub async fn apply(
        &mut self,
        state: StateId,
        tactic: &str,
    ) -> Result<TacticOutcome, LeanError> {
        self.apply_within(state, tactic, None).await
    }

    /// [`Session::apply`] with its own time limit instead of `[lean].tactic_timeout` (the
    /// search's probe tactics, which should fail fast).
    pub async fn apply_within(
        &mut self,
        state: StateId,
        tactic: &str,
        timeout: Option<Duration>,
    ) -> Result<TacticOutcome, LeanError> {
        self.run_tactic(state, tactic, timeout, false).await
    }

    /// A tactic whose sorries are the search's own (`have h : P := by sorry` in place of a
    /// failed `have`): an answer whose sorries all have proof states, and no error, is
    /// [`TacticOutcome::Holes`], each sorry a state of this session. Any other answer reads
    /// as [`Session::apply`] reads it.
    pub async fn apply_with_holes(
        &mut self,
        state: StateId,
        tactic: &str,
    ) -> Result<TacticOutcome, LeanError> {
        self.run_tactic(state, tactic, None, true).await
    }

    async fn run_tactic(
        &mut self,
        state: StateId,
        tactic: &str,
        timeout: Option<Duration>,
        holes: bool,
    ) -> Result<TacticOutcome, LeanError> {
        self.node(state)?;
        // Between tactics is a safe point: a worn-out worker is replaced and replayed onto.
        self.lease.recycle_if_worn();
        let mut crashed_on_tactic = false;
        loop {
            match self.try_apply(state, tactic, timeout).await {
                Ok(reply) => {
                    self.lease.progress();
                    return Ok(self.record(state, tactic, reply, holes));
                }
                // A hang is the tactic's verdict, not the infrastructure's: no strike.
                Err(Step::Tactic(fault @ Fault::Timeout(_))) => {
                    self.lease.fault(fault, false).await?;
                    self.lease.progress();
                    return Ok(TacticOutcome::Timeout);
                }
                // A lost state is ours or the process's, never the tactic's.
                Err(Step::Tactic(fault @ Fault::LostState(_))) => {
                    self.lease.fault(fault, true).await?
                }
                // The same tactic killing a fresh REPL twice is that tactic's doing (Lean
                // can die of a stack overflow): an error, and the theorem goes on.
                Err(Step::Tactic(fault)) if crashed_on_tactic => {
                    let message = format!("the Lean REPL died running this tactic twice: {fault}");
                    self.lease.fault(fault, false).await?;
                    self.lease.progress();
                    return Ok(TacticOutcome::Error { message });
                }
                Err(Step::Tactic(fault)) => {
                    crashed_on_tactic = true;
                    self.lease.fault(fault, true).await?
                }
                Err(Step::Replay(Failure::Fault(fault))) => self.lease.fault(fault, true).await?,
                Err(Step::Replay(Failure::Final(e))) => return Err(e),
            }
        }
    }

    /// The whole-proof check of `tactics` (one per step, as applied) on this session's worker.
    pub async fn check_proof(&mut self, tactics: &[String]) -> Result<ProofCheck, LeanError> {
        let body = indent_tactics(tactics);
        self.lease.recycle_if_worn();
        loop {
            let pool = Arc::clone(self.lease.pool());
            let worker = self.lease.worker()?;
            match check_proof(worker, &self.theorem, &body, pool.config()).await {
                Ok(check) => {
                    self.lease.progress();
                    return Ok(check);
                }
                Err(Failure::Final(e)) => return Err(e),
                Err(Failure::Fault(fault)) => self.lease.fault(fault, true).await?,
            }
        }
    }

    async fn try_apply(
        &mut self,
        state: StateId,
        tactic: &str,
        timeout: Option<Duration>,
    ) -> Result<Reply<TacticResponse>, Step> {
        let proof_state = self.ensure_live(state).await.map_err(Step::Replay)?;
        let pool = Arc::clone(self.lease.pool());
        let worker = self.lease.worker().map_err(|e| Step::Replay(e.into()))?;
        let timeout = timeout.unwrap_or_else(|| tactic_timeout(pool.config()));
        worker
            .tactic(proof_state, tactic, timeout)
            .await
            .map_err(Step::Tactic)
    }

    /// The current worker's `proofState` for `state`. If the worker was replaced since, the
    /// state is rebuilt from its nearest live ancestor (or the theorem start) in ONE request:
    /// the path as one parenthesised tactic sequence ([`tactic_block`]). Intermediate
    /// states are not made live; they are rebuilt the same way if the search asks for them.
    /// A hole on the way up is rebuilt first ([`Session::rebuild_hole`]) and the path goes
    /// on from it.
    async fn ensure_live(&mut self, state: StateId) -> Result<u32, Failure> {
        self.lease.worker()?;
        if self.live_generation != self.lease.generation() {
            self.live.clear();
            self.live_generation = self.lease.generation();
        }
        let mut cursor = Some(state);
        while let Some(id) = cursor {
            let node = &self.nodes[id.0 as usize];
            if self.live.contains_key(&id) || matches!(node.link, Link::Sorry(_)) {
                break;
            }
            cursor = node.parent;
        }
        if let Some(&live) = cursor.and_then(|id| self.live.get(&id)) {
            if cursor == Some(state) {
                return Ok(live);
            }
        }
        let pool = Arc::clone(self.lease.pool());
        let config = pool.config();
        let base = match cursor {
            Some(base) if self.live.contains_key(&base) => base,
            Some(hole) => {
                self.rebuild_hole(hole).await?;
                hole
            }
            None => {
                let worker = self.lease.worker()?;
                let root = worker.start(&self.theorem, config).await?;
                self.live.insert(StateId(0), root.proof_state);
                StateId(0)
            }
        };
        if base == state {
            return Ok(self.live[&state]);
        }
        let tactics = self.path_from(Some(base), state);
        let admits = self.path_admits(base, state);
        let from = self.live[&base];
        let expected = &self.nodes[state.0 as usize].goals;
        let worker = self.lease.worker()?;
        let reply = worker
            .tactic(from, &tactic_block(&tactics), tactic_timeout(config))
            .await?;
        if let Ok(response) = &reply {
            if replayed_to(response, expected, admits) {
                self.live.insert(state, response.proof_state);
                return Ok(response.proof_state);
            }
        }
        tracing::debug!(
            ?reply,
            "the tactic path as one block did not reproduce the state; replaying step by step"
        );
        self.replay_steps(base, state).await
    }

    /// Makes the hole `hole` live again: its parent state rebuilt, the hole tactic sent there
    /// again, and the same sorry of the answer taken, which must show the same goal. Boxed:
    /// it and [`Session::ensure_live`] call each other.
    fn rebuild_hole(
        &mut self,
        hole: StateId,
    ) -> Pin<Box<dyn Future<Output = Result<(), Failure>> + Send + '_>> {
        Box::pin(async move {
            let node = &self.nodes[hole.0 as usize];
            let (Link::Sorry(index), Some(parent)) = (node.link, node.parent) else {
                unreachable!("only a hole is rebuilt as one");
            };
            let (tactic, goal) = (node.tactic.clone(), node.goals.join("\n\n"));
            let from = self.ensure_live(parent).await?;
            let pool = Arc::clone(self.lease.pool());
            let worker = self.lease.worker()?;
            let reply = worker
                .tactic(from, &tactic, tactic_timeout(pool.config()))
                .await?;
            let rebuilt = reply.as_ref().ok().and_then(|response| {
                let sorry = response.sorries.get(index)?;
                let clean = error_messages(&response.messages).is_empty();
                (clean && sorry.goal == goal).then_some(sorry.proof_state?)
            });
            match rebuilt {
                Some(proof_state) => {
                    self.live.insert(hole, proof_state);
                    Ok(())
                }
                None => Err(LeanError::Infrastructure {
                    reason: format!(
                        "sending `{tactic}` again on a fresh worker no longer gives its hole {index} (got {reply:?})"
                    ),
                    stderr_tail: worker.worker.stderr_tail(),
                }
                .into()),
            }
        })
    }

    /// Whether a step on the path from `base` down to `state` carries the search's sorries.
    fn path_admits(&self, base: StateId, state: StateId) -> bool {
        let mut cursor = state;
        while cursor != base {
            let node = &self.nodes[cursor.0 as usize];
            if node.link == (Link::Result { admits: true }) {
                return true;
            }
            cursor = node.parent.expect("base is an ancestor");
        }
        false
    }

    /// The slow way to rebuild `state`: one request per tactic from the live `base`,
    /// each checked against the goals recorded when the search first saw it.
    async fn replay_steps(&mut self, base: StateId, state: StateId) -> Result<u32, Failure> {
        let mut chain = Vec::new();
        let mut cursor = state;
        while cursor != base {
            chain.push(cursor);
            cursor = self.nodes[cursor.0 as usize]
                .parent
                .expect("base is an ancestor");
        }
        let pool = Arc::clone(self.lease.pool());
        let config = pool.config();
        let worker = self.lease.worker()?;
        for id in chain.into_iter().rev() {
            let node = &self.nodes[id.0 as usize];
            let from = self.live[&node.parent.expect("not the root")];
            let reply = worker
                .tactic(from, &node.tactic, tactic_timeout(config))
                .await?;
            let admits = node.link == (Link::Result { admits: true });
            match reply {
                Ok(response) if replayed_to(&response, &node.goals, admits) => {
                    self.live.insert(id, response.proof_state);
                }
                other => {
                    return Err(LeanError::Infrastructure {
                        reason: format!(
                            "replaying `{}` on a fresh worker no longer reproduces the state (got {other:?})",
                            node.tactic
                        ),
                        stderr_tail: worker.worker.stderr_tail(),
                    }
                    .into())
                }
            }
        }
        Ok(self.live[&state])
    }

    /// The tactics leading from `base` (the root when None) down to `state`.
    fn path_from(&self, base: Option<StateId>, state: StateId) -> Vec<String> {
        let mut path = Vec::new();
        let mut cursor = state;
        while Some(cursor) != base {
            let node = &self.nodes[cursor.0 as usize];
            let Some(parent) = node.parent else { break };
            path.push(node.tactic.clone());
            cursor = parent;
        }
        path.reverse();
        path
    }

    fn record(
        &mut self,
        parent: StateId,
        tactic: &str,
        reply: Reply<TacticResponse>,
        holes: bool,
    ) -> TacticOutcome {
        let response = match reply {
            Ok(response) => response,
            Err(e) => return TacticOutcome::Error { message: e.message },
        };
        let mut new_state = |goals: Vec<String>, link: Link, proof_state: u32| {
            let id = StateId(self.nodes.len() as u32);
            self.nodes.push(Node {
                parent: Some(parent),
                tactic: tactic.to_owned(),
                goals,
                link,
            });
            self.live.insert(id, proof_state);
            id
        };
        let result = Link::Result { admits: false };
        match classify(&response) {
            Verdict::Sorry(_)
                if holes && response.sorries.iter().all(|s| s.proof_state.is_some()) =>
            {
                let holes = response
                    .sorries
                    .iter()
                    .enumerate()
                    .map(|(i, sorry)| Hole {
                        state: new_state(
                            vec![sorry.goal.clone()],
                            Link::Sorry(i),
                            sorry.proof_state.expect("checked above"),
                        ),
                        goal: sorry.goal.clone(),
                    })
                    .collect();
                let goals = response.goals.clone();
                let state = new_state(
                    goals.clone(),
                    Link::Result { admits: true },
                    response.proof_state,
                );
                TacticOutcome::Holes {
                    state,
                    goals,
                    holes,
                }
            }
            Verdict::Error(message) => TacticOutcome::Error { message },
            Verdict::Sorry(goals) => TacticOutcome::Sorry { goals },
            Verdict::Incomplete(status) => TacticOutcome::Incomplete {
                state: new_state(Vec::new(), result, response.proof_state),
                status,
            },
            Verdict::Complete { status_confirmed } => TacticOutcome::Complete {
                state: new_state(Vec::new(), result, response.proof_state),
                status_confirmed,
            },
            Verdict::Progress(goals) => TacticOutcome::Progress {
                state: new_state(goals.clone(), result, response.proof_state),
                goals,
            },
        }
    }

    fn node(&self, state: StateId) -> Result<&Node, LeanError> {
        self.nodes
            .get(state.0 as usize)
            .ok_or(LeanError::UnknownState(state))
    }
}

/// Whether a replay request reproduced a state with these goals: no error, and nothing
/// admitted unless the path holds hole tactics (`admits`), whose sorries it then repeats.
fn replayed_to(response: &TacticResponse, goals: &[String], admits: bool) -> bool {
    match classify(response) {
        Verdict::Progress(found) => found == goals,
        Verdict::Complete { .. } | Verdict::Incomplete(_) => goals.is_empty(),
        Verdict::Sorry(_) if admits => response.goals == goals,
        Verdict::Error(_) | Verdict::Sorry(_) => false,
    }
}

#[derive(Debug, PartialEq)]
enum Verdict {
    Error(String),
    Sorry(Vec<String>),
    Incomplete(String),
    Complete { status_confirmed: bool },
    Progress(Vec<String>),
}

/// The completion rule. Any error-severity message makes the tactic a failure, whatever else
/// it says. An answer with `sorries` admitted a goal (`sorry`, `stop`, `admit`, ...): never a
/// state to build on. `proofStatus == "Completed"` is complete; empty goals with another
/// status are incomplete, but the status can be wrong (repl PR #85), so the search runs the
/// whole-proof check on them too; empty goals without a status (REPL < v4.19) are complete
/// but unconfirmed.
fn classify(response: &TacticResponse) -> Verdict {
    let errors = error_messages(&response.messages);
    if !errors.is_empty() {
        return Verdict::Error(errors.join("\n"));
    }
    if !response.sorries.is_empty() {
        return Verdict::Sorry(response.sorries.iter().map(|s| s.goal.clone()).collect());
    }
    match (response.proof_status.as_deref(), response.goals.is_empty()) {
        (Some(COMPLETED), _) => Verdict::Complete {
            status_confirmed: true,
        },
        (Some(status), true) => Verdict::Incomplete(status.to_owned()),
        (None, true) => Verdict::Complete {
            status_confirmed: false,
        },
        (_, false) => Verdict::Progress(response.goals.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Message, Pos, Severity};

    fn response(goals: &[&str], status: Option<&str>, error: Option<&str>) -> TacticResponse {
        TacticResponse {
            proof_state: 1,
            goals: goals.iter().map(|g| g.to_string()).collect(),
            messages: error
                .map(|data| Message {
                    severity: Severity::Error,
                    pos: Pos { line: 0, column: 0 },
                    end_pos: None,
                    data: data.into(),
                })
                .into_iter()
                .collect(),
            sorries: Vec::new(),
            proof_status: status.map(String::from),
        }
    }

    #[test]
    fn completion_rule() {
        assert_eq!(
            classify(&response(&[], Some("Completed"), None)),
            Verdict::Complete {
                status_confirmed: true
            }
        );
        assert_eq!(
            classify(&response(
                &[],
                Some("Incomplete: contains metavariable(s)"),
                None
            )),
            Verdict::Incomplete("Incomplete: contains metavariable(s)".into())
        );
        assert_eq!(
            classify(&response(&[], None, None)),
            Verdict::Complete {
                status_confirmed: false
            }
        );
        assert_eq!(
            classify(&response(
                &["⊢ p"],
                Some("Incomplete: open goals remain"),
                None
            )),
            Verdict::Progress(vec!["⊢ p".into()])
        );
        // The REPL's own invalid-tactic answer: an error plus "Incomplete: contains sorry".
        assert_eq!(
            classify(&response(
                &[],
                Some("Incomplete: contains sorry"),
                Some("Unknown identifier")
            )),
            Verdict::Error("Unknown identifier".into())
        );
        assert_eq!(
            classify(&response(&[], None, Some("boom"))),
            Verdict::Error("boom".into())
        );
    }
}

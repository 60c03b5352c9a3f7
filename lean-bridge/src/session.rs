//! One theorem's Lean session. States are kept as tactic paths from the root, so when the
//! worker is replaced (fault or recycling) any state can be rebuilt on the fresh process by
//! replaying the theorem start and its path — lazily, only when it is used again.

use std::collections::HashMap;
use std::sync::Arc;

use crate::error::{Failure, LeanError};
use crate::lease::Lease;
use crate::outcome::{ProofCheck, StateId, TacticOutcome};
use crate::proof_check::{check_proof, indent_tactics};
use crate::protocol::{error_messages, Reply, TacticResponse};
use crate::theorem::Theorem;
use crate::worker::Fault;

/// `proofStatus` of a finished proof (repl >= v4.19).
const COMPLETED: &str = "Completed";

pub struct Session {
    lease: Lease,
    theorem: Theorem,
    /// `StateId(i)` is `nodes[i]`; node 0 is the root.
    nodes: Vec<Node>,
    root_goals: Vec<String>,
    /// StateId -> `proofState` on the current worker, valid for `live_generation` only.
    live: HashMap<StateId, u32>,
    live_generation: u64,
}

struct Node {
    parent: Option<StateId>,
    /// The tactic that led here from `parent` (empty at the root).
    tactic: String,
}

/// Where a fault struck: a timeout of the tactic itself is Lean's verdict on that tactic
/// (`TacticOutcome::Timeout`); any other fault is the infrastructure's.
enum Step {
    Replay(Failure),
    Tactic(Fault),
}

impl Session {
    pub(crate) async fn start(mut lease: Lease, theorem: Theorem) -> Result<Self, LeanError> {
        loop {
            let pool = Arc::clone(lease.pool());
            let worker = lease.worker()?;
            match worker.start(&theorem, pool.config()).await {
                Ok(root) => {
                    let mut session = Self {
                        live_generation: lease.generation(),
                        lease,
                        theorem,
                        nodes: vec![Node {
                            parent: None,
                            tactic: String::new(),
                        }],
                        root_goals: root.goals,
                        live: HashMap::new(),
                    };
                    session.live.insert(StateId(0), root.proof_state);
                    return Ok(session);
                }
                Err(Failure::Final(e)) => return Err(e),
                Err(Failure::Fault(fault)) => lease.fault(fault, true).await?,
            }
        }
    }

    pub fn root(&self) -> (StateId, &[String]) {
        (StateId(0), &self.root_goals)
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
        let mut path = Vec::new();
        let mut cursor = self.node(state)?;
        while let Some(parent) = cursor.parent {
            path.push(cursor.tactic.clone());
            cursor = self.node(parent)?;
        }
        path.reverse();
        Ok(path)
    }

    pub async fn apply(
        &mut self,
        state: StateId,
        tactic: &str,
    ) -> Result<TacticOutcome, LeanError> {
        self.node(state)?;
        // Between tactics is a safe point: a worn-out worker is replaced and replayed onto.
        self.lease.recycle_if_worn();
        let mut crashed_on_tactic = false;
        loop {
            match self.try_apply(state, tactic).await {
                Ok(reply) => return Ok(self.record(state, tactic, reply)),
                // A hang is the tactic's verdict, not the infrastructure's: no strike.
                Err(Step::Tactic(fault @ Fault::Timeout(_))) => {
                    self.lease.fault(fault, false).await?;
                    return Ok(TacticOutcome::Timeout);
                }
                // The same tactic killing a fresh REPL twice is that tactic's doing (Lean
                // can die of a stack overflow): an error, and the theorem goes on.
                Err(Step::Tactic(fault)) if crashed_on_tactic => {
                    let message = format!("the Lean REPL died running this tactic twice: {fault}");
                    self.lease.fault(fault, false).await?;
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
                Ok(check) => return Ok(check),
                Err(Failure::Final(e)) => return Err(e),
                Err(Failure::Fault(fault)) => self.lease.fault(fault, true).await?,
            }
        }
    }

    async fn try_apply(
        &mut self,
        state: StateId,
        tactic: &str,
    ) -> Result<Reply<TacticResponse>, Step> {
        let proof_state = self.ensure_live(state).await.map_err(Step::Replay)?;
        let pool = Arc::clone(self.lease.pool());
        let worker = self.lease.worker().map_err(|e| Step::Replay(e.into()))?;
        worker
            .tactic(proof_state, tactic, pool.config())
            .await
            .map_err(Step::Tactic)
    }

    /// The current worker's `proofState` for `state`, replaying from the nearest live
    /// ancestor (or the theorem start) if the worker was replaced since.
    async fn ensure_live(&mut self, state: StateId) -> Result<u32, Failure> {
        self.lease.worker()?;
        if self.live_generation != self.lease.generation() {
            self.live.clear();
            self.live_generation = self.lease.generation();
        }
        let mut chain = Vec::new();
        let mut cursor = Some(state);
        while let Some(id) = cursor {
            if self.live.contains_key(&id) {
                break;
            }
            chain.push(id);
            cursor = self.nodes[id.0 as usize].parent;
        }
        let pool = Arc::clone(self.lease.pool());
        let config = pool.config();
        let worker = self.lease.worker()?;
        for id in chain.into_iter().rev() {
            let node = &self.nodes[id.0 as usize];
            let proof_state = match node.parent {
                None => worker.start(&self.theorem, config).await?.proof_state,
                Some(parent) => {
                    let from = self.live[&parent];
                    let reply = worker.tactic(from, &node.tactic, config).await?;
                    match reply.map(|r| (classify(&r), r.proof_state)) {
                        Ok((Verdict::Progress(_) | Verdict::Complete { .. }, proof_state)) => {
                            proof_state
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
            };
            self.live.insert(id, proof_state);
        }
        Ok(self.live[&state])
    }

    fn record(
        &mut self,
        parent: StateId,
        tactic: &str,
        reply: Reply<TacticResponse>,
    ) -> TacticOutcome {
        let response = match reply {
            Ok(response) => response,
            Err(e) => return TacticOutcome::Error { message: e.message },
        };
        let mut new_state = || {
            let id = StateId(self.nodes.len() as u32);
            self.nodes.push(Node {
                parent: Some(parent),
                tactic: tactic.to_owned(),
            });
            self.live.insert(id, response.proof_state);
            id
        };
        match classify(&response) {
            Verdict::Error(message) => TacticOutcome::Error { message },
            Verdict::Incomplete(status) => TacticOutcome::Incomplete { status },
            Verdict::Complete { status_confirmed } => TacticOutcome::Complete {
                state: new_state(),
                status_confirmed,
            },
            Verdict::Progress(goals) => TacticOutcome::Progress {
                state: new_state(),
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

#[derive(Debug, PartialEq)]
enum Verdict {
    Error(String),
    Incomplete(String),
    Complete { status_confirmed: bool },
    Progress(Vec<String>),
}

/// The completion rule: complete only on `proofStatus == "Completed"`; empty goals with any
/// other status are incomplete; empty goals without a status (old REPL) are complete but
/// unconfirmed. Any error-severity message makes the tactic a failure, whatever else it says.
fn classify(response: &TacticResponse) -> Verdict {
    let errors = error_messages(&response.messages);
    if !errors.is_empty() {
        return Verdict::Error(errors.join("\n"));
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

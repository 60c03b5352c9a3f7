//! What applying a tactic or checking a proof can come to.

use serde::{Deserialize, Serialize};

/// A proof state inside one session. Stable across worker restarts: the session maps it to
/// the current worker's `proofState`, replaying the tactic path when the worker was replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct StateId(pub u32);

/// The result of one tactic on one state.
#[derive(Debug, Clone, PartialEq)]
pub enum TacticOutcome {
    /// New proof state with open goals (pretty-printed, one string per goal).
    Progress { state: StateId, goals: Vec<String> },
    /// The REPL said `proofStatus: "Completed"` (or, on an old REPL without `proofStatus`,
    /// gave no goals; `status_confirmed` is then false). Either way the search must run the
    /// whole-proof check before it reports a proof.
    Complete {
        state: StateId,
        status_confirmed: bool,
    },
    /// No goals and no error, but `proofStatus` says the proof is not done (metavariables,
    /// ...). The repl can say so wrongly (repl PR #85), so the search runs the whole-proof
    /// check on `state` anyway: it is the authority.
    Incomplete { state: StateId, status: String },
    /// The answer carries `sorries`: the tactic admitted goals (`sorry`, `stop`, or a banned
    /// word a user allowed). A rejected candidate, never a state to build on.
    Sorry { goals: Vec<String> },
    /// The answer to a tactic the search sent with sorries of its own (`have h : P := by
    /// sorry` in place of a failed `have`, through [`Session::apply_with_holes`]): each sorry
    /// is a hole whose proof state takes tactics like any other (repl `test/have_by_sorry`).
    /// `goals` remain after the tactic; when they are empty the repl's status is
    /// "Incomplete: contains sorry". Never a proof by itself.
    ///
    /// [`Session::apply_with_holes`]: crate::Session::apply_with_holes
    Holes {
        state: StateId,
        goals: Vec<String>,
        holes: Vec<Hole>,
    },
    /// Lean rejected the tactic; the message is Lean's.
    Error { message: String },
    /// The tactic ran past `tactic_timeout`; the worker was killed and replaced.
    Timeout,
}

/// One sorry of a [`TacticOutcome::Holes`] answer: its own proof state and its goal
/// (context and target, as the repl prints it).
#[derive(Debug, Clone, PartialEq)]
pub struct Hole {
    pub state: StateId,
    pub goal: String,
}

/// Verdict of the whole-proof check: the statement and the tactic script as one command in
/// the header environment, then `#print axioms`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProofCheck {
    pub verified: bool,
    /// The full checked text (statement `:= by` and the script).
    pub proof: String,
    /// Lean's error messages, and our reasons for rejecting (sorry, disallowed axioms).
    pub errors: Vec<String>,
    /// Axioms the theorem depends on, as `#print axioms` lists them.
    pub axioms: Vec<String>,
}

//! Errors of the bridge: what the caller sees, and the internal split between worker faults
//! (recoverable by restarting the worker) and final answers.

use crate::outcome::StateId;
use crate::worker::Fault;

/// Why a theorem could not be worked on. Lean's verdicts on tactics are not errors
/// (see [`crate::TacticOutcome`]); these are.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LeanError {
    /// Lean rejected the theorem statement itself (not an infrastructure fault).
    #[error("Lean rejected the statement: {message}")]
    Statement { message: String },
    /// The header (imports, options) failed to load; `message` is Lean's.
    #[error("the header failed to load: {message}\n--- header ---\n{header}")]
    Header { header: String, message: String },
    /// The REPL command could not be started.
    #[error("cannot start the Lean REPL `{command}`: {message}")]
    Spawn { command: String, message: String },
    /// Repeated worker faults (or a replay that no longer reproduces): give up on this theorem.
    #[error("Lean infrastructure failure: {reason}; last REPL stderr: {stderr_tail:?}")]
    Infrastructure { reason: String, stderr_tail: String },
    /// The `[lean]` config cannot work (e.g. empty command, zero workers).
    #[error("invalid [lean] config: {message}")]
    Config { message: String },
    /// A state id this session never handed out.
    #[error("state {0:?} does not exist in this session")]
    UnknownState(StateId),
}

/// Inside the bridge: a fault means "kill the worker, start a fresh one, try again";
/// anything else is the final answer.
#[derive(Debug)]
pub(crate) enum Failure {
    Fault(Fault),
    Final(LeanError),
}

impl From<Fault> for Failure {
    fn from(fault: Fault) -> Self {
        Failure::Fault(fault)
    }
}

impl From<LeanError> for Failure {
    fn from(error: LeanError) -> Self {
        Failure::Final(error)
    }
}

//! The proof environment the engine searches in. The real one is `lean_bridge`'s pool;
//! tests and benchmarks plug in-process doubles into the same trait.

use std::time::Duration;

use async_trait::async_trait;
use formats::results::ErrorKind;
pub use formats::theorems::Theorem;
pub use lean_bridge::{Hole, ProofCheck, StateId, TacticOutcome};

/// An environment failure that is not Lean's verdict on a tactic. The theorem is recorded as
/// `status = "error"` with the message and, as `error_kind`, whose fault it was.
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    /// Lean rejected the theorem statement: a re-run gives the same answer.
    #[error("Lean rejected the statement: {0}")]
    Statement(String),
    /// The infrastructure gave up (repeated worker faults, a header that does not load, ...).
    #[error("{0}")]
    Infrastructure(String),
}

impl EnvError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            EnvError::Statement(_) => ErrorKind::Statement,
            EnvError::Infrastructure(_) => ErrorKind::Infrastructure,
        }
    }
}

/// Starts theorems. Waiting for a free worker happens inside `start`.
#[async_trait]
pub trait ProofEnv: Send + Sync {
    async fn start(&self, theorem: &Theorem) -> Result<Box<dyn ProofSession>, EnvError>;
}

/// One theorem's Lean session, held for the theorem's whole search.
#[async_trait]
pub trait ProofSession: Send {
    /// The root state and its goals.
    fn root(&self) -> (StateId, &[String]);
    async fn apply(&mut self, state: StateId, tactic: &str) -> Result<TacticOutcome, EnvError>;
    /// `apply` under its own time limit (probe tactics). Environments without time limits
    /// (in-process doubles) answer as `apply` does.
    async fn apply_within(
        &mut self,
        state: StateId,
        tactic: &str,
        _timeout: Duration,
    ) -> Result<TacticOutcome, EnvError> {
        self.apply(state, tactic).await
    }
    /// A tactic whose sorries are the search's own holes (`have h : P := by sorry`,
    /// `search.decompose`): Lean's answer with them is [`TacticOutcome::Holes`]. An
    /// environment that cannot give a sorry its own state answers as `apply` does, and the
    /// hole is then a failed attempt like any sorry.
    async fn apply_with_holes(
        &mut self,
        state: StateId,
        tactic: &str,
    ) -> Result<TacticOutcome, EnvError> {
        self.apply(state, tactic).await
    }
    /// The whole-proof check: `tactics` joined as one script after `:= by`.
    async fn check_proof(&mut self, tactics: &[String]) -> Result<ProofCheck, EnvError>;
}

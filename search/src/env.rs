//! The proof environment the engine searches in. The real one is `lean_bridge`'s pool;
//! tests and benchmarks plug in-process doubles into the same trait.

use async_trait::async_trait;
pub use lean_bridge::{ProofCheck, StateId, TacticOutcome, Theorem};

/// An environment failure that is not Lean's verdict on a tactic: the infrastructure gave
/// up (repeated worker faults, a header that does not load, ...). The theorem is recorded
/// as `status = "error"` with this message.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct EnvError(pub String);

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
    /// The whole-proof check: `tactics` joined as one script after `:= by`.
    async fn check_proof(&mut self, tactics: &[String]) -> Result<ProofCheck, EnvError>;
}

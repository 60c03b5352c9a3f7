//! [`ProofEnv`] over the real Lean pool.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use lean_bridge::{LeanError, LeanPool, Session};

use crate::env::{EnvError, ProofCheck, ProofEnv, ProofSession, StateId, TacticOutcome, Theorem};

/// The pool as the engine sees it. Every `LeanError` ends the theorem with `status = "error"`
/// and Lean's (or the bridge's) reason: a rejected statement is the theorem's fault, anything
/// else the infrastructure's.
pub struct LeanEnv(pub Arc<LeanPool>);

fn env_error(e: LeanError) -> EnvError {
    match e {
        LeanError::Statement { message } => EnvError::Statement(message),
        other => EnvError::Infrastructure(other.to_string()),
    }
}

#[async_trait]
impl ProofEnv for LeanEnv {
    async fn start(&self, theorem: &Theorem) -> Result<Box<dyn ProofSession>, EnvError> {
        let session = self.0.start_theorem(theorem).await.map_err(env_error)?;
        Ok(Box::new(LeanSession(session)))
    }
}

struct LeanSession(Session);

#[async_trait]
impl ProofSession for LeanSession {
    fn root(&self) -> (StateId, &[String]) {
        self.0.root()
    }

    async fn apply(&mut self, state: StateId, tactic: &str) -> Result<TacticOutcome, EnvError> {
        self.0.apply(state, tactic).await.map_err(env_error)
    }

    async fn apply_within(
        &mut self,
        state: StateId,
        tactic: &str,
        timeout: Duration,
    ) -> Result<TacticOutcome, EnvError> {
        self.0
            .apply_within(state, tactic, Some(timeout))
            .await
            .map_err(env_error)
    }

    async fn apply_with_holes(
        &mut self,
        state: StateId,
        tactic: &str,
    ) -> Result<TacticOutcome, EnvError> {
        self.0
            .apply_with_holes(state, tactic)
            .await
            .map_err(env_error)
    }

    async fn check_proof(&mut self, tactics: &[String]) -> Result<ProofCheck, EnvError> {
        self.0.check_proof(tactics).await.map_err(env_error)
    }
}

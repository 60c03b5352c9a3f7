//! A worker together with the header environments it has loaded: Mathlib is imported once
//! per worker and distinct header text, never once per theorem.

use std::collections::HashMap;
use std::time::Duration;

use crate::config::LeanConfig;
use crate::error::{Failure, LeanError};
use crate::protocol::{error_messages, CommandResponse, Reply, Request, TacticResponse};
use crate::worker::{Fault, Worker};
use formats::theorems::Theorem;

/// Memory is read from /proc at most once per this many requests (it is not free).
const RSS_CHECK_EVERY: u64 = 32;

pub(crate) struct CachedWorker {
    pub(crate) worker: Worker,
    /// Header text -> the environment it produced on this process.
    headers: HashMap<String, u32>,
    /// Request count at the last memory reading.
    rss_checked_at: Option<u64>,
}

/// A theorem's root in one worker: the `proofState` of its `sorry` and the goals.
pub(crate) struct Root {
    pub(crate) proof_state: u32,
    pub(crate) goals: Vec<String>,
}

impl CachedWorker {
    pub(crate) fn spawn(config: &LeanConfig) -> Result<Self, LeanError> {
        Ok(Self {
            worker: Worker::spawn(config)?,
            headers: HashMap::new(),
            rss_checked_at: None,
        })
    }

    /// Whether to replace this worker at the next safe point: the REPL keeps every state
    /// for its whole life, so memory only grows.
    pub(crate) fn worn_out(&mut self, config: &LeanConfig) -> bool {
        let requests = self.worker.requests();
        if self.worker.is_dead() || requests >= config.max_requests_per_worker {
            return true;
        }
        if self
            .rss_checked_at
            .is_some_and(|at| requests < at + RSS_CHECK_EVERY)
        {
            return false;
        }
        self.rss_checked_at = Some(requests);
        self.worker
            .rss_mb()
            .is_some_and(|rss| rss > config.max_rss_mb)
    }

    pub(crate) fn has_header(&self, header: &str) -> bool {
        header.trim().is_empty() || self.headers.contains_key(header)
    }

    /// The environment of `header` (None for an empty header), importing it if this worker
    /// has not yet.
    pub(crate) async fn header_env(
        &mut self,
        header: &str,
        config: &LeanConfig,
    ) -> Result<Option<u32>, Failure> {
        if header.trim().is_empty() {
            return Ok(None);
        }
        if let Some(env) = self.headers.get(header) {
            return Ok(Some(*env));
        }
        let timeout = Duration::from_secs_f64(config.header_timeout);
        let reply: Reply<CommandResponse> = self
            .worker
            .send(&Request::command(header, None), timeout)
            .await?;
        let header_error = |message: String| LeanError::Header {
            header: header.to_owned(),
            message,
        };
        let response = reply.map_err(|e| header_error(e.message))?;
        let errors = error_messages(&response.messages);
        if !errors.is_empty() {
            return Err(header_error(errors.join("\n")).into());
        }
        self.headers.insert(header.to_owned(), response.env);
        tracing::debug!(env = response.env, "header loaded");
        Ok(Some(response.env))
    }

    /// Runs `<statement> := by sorry` on the theorem's header environment.
    pub(crate) async fn start(
        &mut self,
        theorem: &Theorem,
        config: &LeanConfig,
    ) -> Result<Root, Failure> {
        let env = self
            .header_env(theorem.header_or(&config.header), config)
            .await?;
        let cmd = format!("{} := by sorry", theorem.statement_head());
        let reply: Reply<CommandResponse> = self
            .worker
            .send(&Request::command(cmd, env), tactic_timeout(config))
            .await?;
        let statement_error = |message: String| LeanError::Statement { message };
        let response = reply.map_err(|e| statement_error(e.message))?;
        let errors = error_messages(&response.messages);
        if !errors.is_empty() {
            return Err(statement_error(errors.join("\n")).into());
        }
        match response.sorries.as_slice() {
            [sorry] => match sorry.proof_state {
                Some(proof_state) => Ok(Root {
                    proof_state,
                    goals: vec![sorry.goal.clone()],
                }),
                None => {
                    Err(statement_error("the REPL gave the sorry no proof state".into()).into())
                }
            },
            sorries => Err(statement_error(format!(
                "expected exactly one `sorry` goal, got {}",
                sorries.len()
            ))
            .into()),
        }
    }

    pub(crate) async fn tactic(
        &mut self,
        proof_state: u32,
        tactic: &str,
        timeout: Duration,
    ) -> Result<Reply<TacticResponse>, Fault> {
        self.worker
            .send(&Request::tactic(tactic, proof_state), timeout)
            .await
    }
}

pub(crate) fn tactic_timeout(config: &LeanConfig) -> Duration {
    Duration::from_secs_f64(config.tactic_timeout)
}

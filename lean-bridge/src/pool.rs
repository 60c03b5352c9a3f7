//! The pool: at most `workers` REPL processes, each handed to one caller at a time, kept
//! alive between theorems so their header environments are reused.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Semaphore;

use crate::cached_worker::{tactic_timeout, CachedWorker};
use crate::config::LeanConfig;
use crate::error::{Failure, LeanError};
use crate::lease::Lease;
use crate::outcome::ProofCheck;
use crate::proof_check::{check_proof, indent_script};
use crate::protocol::{CommandResponse, Reply, Request, Severity};
use crate::session::Session;
use formats::theorems::Theorem;

pub struct LeanPool {
    config: LeanConfig,
    /// Why the config cannot work, reported by every operation (`new` cannot fail).
    invalid: Option<String>,
    slots: Arc<Semaphore>,
    idle: Mutex<Vec<CachedWorker>>,
    closed: AtomicBool,
}

impl LeanPool {
    /// Validates config; workers are spawned lazily and kept (header env cached per worker).
    pub fn new(config: LeanConfig) -> Arc<LeanPool> {
        let invalid = validate(&config).err();
        let slots = Arc::new(Semaphore::new(config.workers.max(1)));
        Arc::new(Self {
            config,
            invalid,
            slots,
            idle: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
        })
    }

    pub fn config(&self) -> &LeanConfig {
        &self.config
    }

    /// Waits for a free worker (at most `workers` sessions at once), imports the header if this
    /// worker has not yet, runs `<statement> := by sorry`; Ok(Session) with the root goals.
    pub async fn start_theorem(self: &Arc<Self>, theorem: &Theorem) -> Result<Session, LeanError> {
        let lease = self.lease(theorem.header_or(&self.config.header)).await?;
        Session::start(lease, theorem.clone()).await
    }

    /// Before a sweep's first theorem needs it: starts one worker for each of the first
    /// `workers` theorems and imports that theorem's header on it, all at once, so no theorem
    /// waits for a Mathlib import (minutes) that could run while the policy server loads.
    /// Returns how many workers were warmed. A worker that fails is logged and dropped, never
    /// an error: the theorem that needs it starts a fresh one and imports again, and reports
    /// a failure the usual way. Warming holds the slots, so a theorem started meanwhile waits
    /// for a warmed worker rather than starting a cold one; dropping the future frees them.
    pub async fn warm_up(self: &Arc<Self>, theorems: &[Theorem]) -> usize {
        let mut warming = tokio::task::JoinSet::new();
        for theorem in theorems.iter().take(self.config.workers) {
            let pool = Arc::clone(self);
            let header = theorem.header_or(&self.config.header).to_owned();
            warming.spawn(async move { pool.warm_one(&header).await });
        }
        let mut warmed = 0;
        while let Some(joined) = warming.join_next().await {
            match joined {
                Ok(Ok(())) => warmed += 1,
                Ok(Err(e)) => {
                    tracing::warn!("warming a Lean worker failed (a theorem retries): {e}")
                }
                Err(e) => tracing::warn!("warming a Lean worker panicked: {e}"),
            }
        }
        tracing::info!("{warmed} Lean workers have their theorems' headers imported");
        warmed
    }

    /// One slot's worker with `header` imported (see [`LeanPool::warm_up`]).
    async fn warm_one(self: &Arc<Self>, header: &str) -> Result<(), LeanError> {
        let mut lease = self.lease(header).await?;
        let worker = lease.worker()?;
        match worker.header_env(header, &self.config).await {
            Ok(_) => Ok(()),
            Err(Failure::Final(e)) => Err(e),
            Err(Failure::Fault(fault)) => {
                let reason = format!("importing the header: {fault}");
                lease.fault(fault, false).await?;
                Err(LeanError::Infrastructure {
                    reason,
                    stderr_tail: String::new(),
                })
            }
        }
    }

    /// Whole-proof check of a tactic script (text after `by`) on a pooled worker (for `verify`).
    /// It takes a slot of its own: inside a session use [`Session::check_proof`] instead
    /// (holding a session while waiting here could wait forever with `workers = 1`).
    pub async fn check_proof(
        self: &Arc<Self>,
        theorem: &Theorem,
        script: &str,
    ) -> Result<ProofCheck, LeanError> {
        let mut lease = self.lease(theorem.header_or(&self.config.header)).await?;
        let body = indent_script(script);
        loop {
            let worker = lease.worker()?;
            match check_proof(worker, theorem, &body, &self.config).await {
                Ok(check) => return Ok(check),
                Err(Failure::Final(e)) => return Err(e),
                Err(Failure::Fault(fault)) => lease.fault(fault, true).await?,
            }
        }
    }

    /// The Lean version the workers run, as the REPL itself answers `#eval Lean.versionString`
    /// (`Lean.versionString` is in core's `Init.Meta`, so no import is needed). Asking the REPL
    /// works wherever `lean` is not on PATH and names the toolchain `lake env` really picks.
    pub async fn lean_version(self: &Arc<Self>) -> Result<String, LeanError> {
        let mut lease = self.lease(&self.config.header).await?;
        loop {
            let worker = lease.worker()?;
            let request = Request::command(LEAN_VERSION_COMMAND, None);
            let reply: Result<Reply<CommandResponse>, _> = worker
                .worker
                .send(&request, tactic_timeout(&self.config))
                .await;
            match reply {
                Ok(reply) => return version_of(reply),
                Err(fault) => lease.fault(fault, true).await?,
            }
        }
    }

    /// Kills all workers. Sessions still running keep theirs until they end.
    pub async fn shutdown(&self) {
        self.closed.store(true, Ordering::SeqCst);
        let idle = std::mem::take(&mut *self.idle.lock().expect("pool lock"));
        drop(idle);
    }

    /// Waits for a slot and takes an idle worker, preferring one that has `header` loaded
    /// already (a worn-out one is replaced here, between theorems).
    async fn lease(self: &Arc<Self>, header: &str) -> Result<Lease, LeanError> {
        if let Some(message) = &self.invalid {
            return Err(LeanError::Config {
                message: message.clone(),
            });
        }
        let permit = Arc::clone(&self.slots)
            .acquire_owned()
            .await
            .expect("the pool never closes its semaphore");
        let worker = {
            let mut idle = self.idle.lock().expect("pool lock");
            match idle.iter().rposition(|w| w.has_header(header)) {
                Some(index) => Some(idle.swap_remove(index)),
                None => idle.pop(),
            }
        };
        let mut lease = Lease::new(Arc::clone(self), permit, worker);
        lease.recycle_if_worn();
        Ok(lease)
    }

    /// A lease gives its worker back; a dead, worn-out or late one is killed instead.
    pub(crate) fn check_in(&self, mut worker: CachedWorker) {
        if self.closed.load(Ordering::SeqCst) || worker.worn_out(&self.config) {
            return;
        }
        self.idle.lock().expect("pool lock").push(worker);
    }
}

const LEAN_VERSION_COMMAND: &str = "#eval Lean.versionString";

/// `#eval` of a `String` prints it as a Lean string literal in an info message: `"4.24.0"`.
fn version_of(reply: Reply<CommandResponse>) -> Result<String, LeanError> {
    let unexpected = |what: String| LeanError::Infrastructure {
        reason: format!("`{LEAN_VERSION_COMMAND}` answered {what}"),
        stderr_tail: String::new(),
    };
    let response = reply.map_err(|e| unexpected(format!("an error: {}", e.message)))?;
    let info = response
        .messages
        .iter()
        .find(|m| m.severity == Severity::Info)
        .ok_or_else(|| unexpected(format!("no info message: {:?}", response.messages)))?;
    let text = info.data.trim();
    Ok(text
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(text)
        .to_owned())
}

fn validate(config: &LeanConfig) -> Result<(), String> {
    if config.command.is_empty() {
        return Err("lean.command must not be empty".into());
    }
    if config.workers == 0 {
        return Err("lean.workers must be at least 1".into());
    }
    if !(config.tactic_timeout > 0.0 && config.header_timeout > 0.0) {
        return Err("lean.tactic_timeout and lean.header_timeout must be positive".into());
    }
    if config.max_faults_per_theorem == 0 {
        return Err("lean.max_faults_per_theorem must be at least 1".into());
    }
    Ok(())
}

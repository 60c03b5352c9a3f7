//! A caller's hold on one pool slot: the slot's worker (spawned lazily, replaced after a
//! fault or when worn out) and the fault accounting that decides when to give up.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::OwnedSemaphorePermit;

use crate::cached_worker::CachedWorker;
use crate::error::LeanError;
use crate::pool::LeanPool;
use crate::worker::Fault;

/// First retry waits this long; each further one doubles it, up to [`MAX_BACKOFF`].
const BASE_BACKOFF: Duration = Duration::from_millis(20);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

pub(crate) struct Lease {
    pool: Arc<LeanPool>,
    worker: Option<CachedWorker>,
    /// Bumped whenever the worker is replaced: proof-state numbers of older generations are
    /// meaningless on the new process.
    generation: u64,
    /// Every fault survived, tactic timeouts included.
    faults: u32,
    /// Faults since the last operation that completed: only these count toward
    /// `max_faults_per_theorem`, so a REPL that dies every few requests costs retries,
    /// never a theorem, as long as each operation gets through on a fresh worker.
    strikes: u32,
    // Dropped last: the worker goes back to the pool before the slot is released.
    _permit: OwnedSemaphorePermit,
}

impl Lease {
    pub(crate) fn new(
        pool: Arc<LeanPool>,
        permit: OwnedSemaphorePermit,
        worker: Option<CachedWorker>,
    ) -> Self {
        Self {
            pool,
            worker,
            generation: 0,
            faults: 0,
            strikes: 0,
            _permit: permit,
        }
    }

    pub(crate) fn pool(&self) -> &Arc<LeanPool> {
        &self.pool
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    pub(crate) fn faults(&self) -> u32 {
        self.faults
    }

    /// The live worker, started if there is none.
    pub(crate) fn worker(&mut self) -> Result<&mut CachedWorker, LeanError> {
        if self.worker.is_none() {
            self.worker = Some(CachedWorker::spawn(self.pool.config())?);
            self.generation += 1;
        }
        Ok(self.worker.as_mut().expect("worker was just set"))
    }

    /// At a safe point: replace a worker past its request or memory budget. Callers replay
    /// what they need on the fresh one, so this is invisible to them.
    pub(crate) fn recycle_if_worn(&mut self) {
        if let Some(worker) = &mut self.worker {
            if worker.worn_out(self.pool.config()) {
                tracing::debug!(
                    requests = worker.worker.requests(),
                    "recycling a worn-out Lean worker"
                );
                self.worker = None;
            }
        }
    }

    /// An operation (theorem start, tactic, proof check) got its answer: the faults before it
    /// made no difference in the end, so they stop counting.
    pub(crate) fn progress(&mut self) {
        self.strikes = 0;
    }

    /// Records a fault: the worker is discarded (the next [`Lease::worker`] starts a fresh
    /// one). A `strike` counts toward `max_faults_per_theorem` until the next
    /// [`Lease::progress`]; past it, the theorem is given up with the REPL's last stderr.
    /// Strikes back off exponentially.
    pub(crate) async fn fault(&mut self, fault: Fault, strike: bool) -> Result<(), LeanError> {
        let stderr_tail = self
            .worker
            .take()
            .map(|w| w.worker.stderr_tail())
            .unwrap_or_default();
        self.faults += 1;
        tracing::warn!(%fault, strike, "Lean worker fault; restarting the worker");
        if !strike {
            return Ok(());
        }
        self.strikes += 1;
        let limit = self.pool.config().max_faults_per_theorem;
        if self.strikes >= limit {
            return Err(LeanError::Infrastructure {
                reason: format!(
                    "{} worker faults in a row without progress, the last: {fault}",
                    self.strikes
                ),
                stderr_tail,
            });
        }
        let backoff = BASE_BACKOFF.saturating_mul(1 << (self.strikes - 1).min(16));
        tokio::time::sleep(backoff.min(MAX_BACKOFF)).await;
        Ok(())
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(worker) = self.worker.take() {
            self.pool.check_in(worker);
        }
    }
}

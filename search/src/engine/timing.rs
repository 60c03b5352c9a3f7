//! Where a theorem's wall time went. Every moment between the start of a theorem and the end
//! of its accounting is attributed to exactly one phase by timing each segment explicitly:
//! the engine closes its own segment (`lap(Engine)`) before every await, and the await's
//! segment (`call(Generate)`, ...) right after it. What the phases do not cover is reported as
//! `unaccounted_ms` rather than silently folded into the engine's share.
//!
//! Time comes from a [`Clock`], so tests can drive it by hand and check the books exactly.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use formats::stats::TimeAccount;
use tokio::sync::Notify;

/// A monotonic time source (time elapsed since some fixed origin) and a timer on it, so
/// deadlines such as the sweep's trajectory flush run on the same clock as the books.
pub trait Clock: Send + Sync {
    fn now(&self) -> Duration;
    /// Resolves once [`Clock::now`] has reached `at`.
    fn sleep_until(&self, at: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

/// The real clock.
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    origin: Instant,
}

impl Default for SystemClock {
    fn default() -> Self {
        Self {
            origin: Instant::now(),
        }
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    fn sleep_until(&self, at: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(tokio::time::sleep_until((self.origin + at).into()))
    }
}

/// A clock that only moves when told to: for deterministic tests of budgets, accounting and
/// timers (a sleeper wakes when [`ManualClock::advance`] passes its deadline).
#[derive(Debug, Default)]
pub struct ManualClock {
    micros: AtomicU64,
    moved: Notify,
}

impl ManualClock {
    pub fn advance(&self, by: Duration) {
        self.micros
            .fetch_add(by.as_micros() as u64, Ordering::SeqCst);
        self.moved.notify_waiters();
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        Duration::from_micros(self.micros.load(Ordering::SeqCst))
    }

    fn sleep_until(&self, at: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            loop {
                // Registered before the check, so an advance in between still wakes it.
                let moved = self.moved.notified();
                if self.now() >= at {
                    return;
                }
                moved.await;
            }
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Waiting on the policy server.
    Generate,
    /// Waiting on Lean (tactics and the whole-proof check).
    Lean,
    /// Waiting on the value model.
    Ebm,
    /// Waiting for a Lean worker (starting the theorem's session).
    Wait,
    /// Waiting on the planner after the policy answered.
    Plan,
    /// Our own work between awaits.
    Engine,
}

/// Attributes consecutive segments of one theorem's time to phases.
#[derive(Debug, Clone)]
pub struct PhaseTimer {
    start: Duration,
    last: Duration,
    account: TimeAccount,
}

impl PhaseTimer {
    /// Starts the books at `start` (a [`Clock::now`] reading).
    pub fn new(start: Duration) -> Self {
        Self {
            start,
            last: start,
            account: TimeAccount::default(),
        }
    }

    pub fn start(&self) -> Duration {
        self.start
    }

    /// Attributes the time since the previous lap to `phase`; returns it in ms.
    pub fn lap(&mut self, clock: &dyn Clock, phase: Phase) -> f64 {
        self.lap_until(clock.now(), phase)
    }

    /// Attributes the time from the previous lap to `at` (a [`Clock::now`] reading) to
    /// `phase`; returns it in ms.
    fn lap_until(&mut self, at: Duration, phase: Phase) -> f64 {
        let now = at.max(self.last);
        let ms = (now - self.last).as_secs_f64() * 1000.0;
        self.last = now;
        let a = &mut self.account;
        *match phase {
            Phase::Generate => &mut a.gen_ms,
            Phase::Lean => &mut a.lean_ms,
            Phase::Ebm => &mut a.ebm_ms,
            Phase::Wait => &mut a.wait_ms,
            Phase::Plan => &mut a.plan_ms,
            Phase::Engine => &mut a.engine_ms,
        } += ms;
        ms
    }

    /// Closes the segment of one awaited call and records its latency.
    pub fn call(&mut self, clock: &dyn Clock, phase: Phase) {
        self.call_until(clock.now(), phase);
    }

    /// [`Self::call`] for a call that finished at `at` (a [`Clock::now`] reading) while
    /// another awaited call went on.
    pub fn call_until(&mut self, at: Duration, phase: Phase) {
        let ms = self.lap_until(at, phase);
        let a = &mut self.account;
        match phase {
            Phase::Generate => a.gen_latency.record(ms),
            Phase::Lean => a.lean_latency.record(ms),
            Phase::Ebm => a.ebm_latency.record(ms),
            Phase::Wait | Phase::Plan | Phase::Engine => {}
        }
    }

    /// Records one planner request's latency (its time overlaps other phases).
    pub fn plan_latency(&mut self, ms: f64) {
        self.account.plan_latency.record(ms);
    }

    /// Milliseconds since the start, for node timestamps and budgets.
    pub fn elapsed(&self, clock: &dyn Clock) -> Duration {
        clock.now().saturating_sub(self.start)
    }

    /// Closes the books: the wall time is read from the clock independently of the laps, so
    /// any time no lap covered shows up as `unaccounted_ms`.
    pub fn finish(&self, clock: &dyn Clock) -> TimeAccount {
        let mut a = self.account.clone();
        a.wall_ms = self.elapsed(clock).as_secs_f64() * 1000.0;
        let parts = a.gen_ms + a.lean_ms + a.ebm_ms + a.wait_ms + a.plan_ms + a.engine_ms;
        a.unaccounted_ms = a.wall_ms - parts;
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_manual_sleeper_wakes_when_the_clock_passes_its_deadline() {
        let clock = std::sync::Arc::new(ManualClock::default());
        let sleeper = tokio::spawn({
            let clock = clock.clone();
            async move { clock.sleep_until(Duration::from_secs(60)).await }
        });
        clock.advance(Duration::from_secs(59));
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished());
        clock.advance(Duration::from_secs(1));
        sleeper.await.unwrap();
        // A deadline already past resolves at once.
        clock.sleep_until(Duration::from_secs(1)).await;
    }

    #[test]
    fn laps_cover_the_wall_and_gaps_are_unaccounted() {
        let clock = ManualClock::default();
        clock.advance(Duration::from_millis(5));
        let mut t = PhaseTimer::new(clock.now());
        clock.advance(Duration::from_millis(2));
        t.lap(&clock, Phase::Engine);
        clock.advance(Duration::from_millis(30));
        t.call(&clock, Phase::Generate);
        clock.advance(Duration::from_millis(7));
        t.call(&clock, Phase::Lean);
        let a = t.finish(&clock);
        assert_eq!(
            (a.wall_ms, a.engine_ms, a.gen_ms, a.lean_ms),
            (39.0, 2.0, 30.0, 7.0)
        );
        assert_eq!(a.unaccounted_ms, 0.0);
        clock.advance(Duration::from_millis(1));
        assert_eq!(t.finish(&clock).unaccounted_ms, 1.0);
    }
}

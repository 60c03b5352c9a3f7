//! The time accounting of a whole sweep (the real runner, in-process doubles): with a manual
//! clock that only the doubles move, by a fixed cost per call, every theorem's phases are
//! exact and sum to its wall time with nothing unaccounted — deterministic, no timings.

use crate::engine_support;

use std::sync::Arc;
use std::time::Duration;

use engine_support::*;
use formats::results::read_results;
use search::config::{Config, SearchConfig};
use search::engine::Clock;
use search::policy::{Completion, Policy, PolicyError};
use search::sweep::{run_sweep, Backends, SweepOptions};
use search::value::ValueScorer;
use sim::world::{Effect, World};

const COSTS: Costs = Costs {
    start: Duration::from_millis(11),
    generate: Duration::from_millis(300),
    tactic: Duration::from_millis(5),
    score: Duration::from_millis(7),
};

/// Four theorems: one needs backtracking past a dead end, two are one step, one is unprovable.
fn four() -> World {
    let mut w = world(
        "deep",
        &["⊢ P"],
        vec![
            state(
                &["⊢ P"],
                vec![
                    tactic("dead", -0.1, to(&["⊢ D"])),
                    tactic("live", -0.3, to(&["⊢ Q"])),
                    tactic("bad", -0.5, Effect::Error("no".into())),
                ],
            ),
            state(
                &["⊢ D"],
                vec![tactic("stuck", -0.1, Effect::Error("no".into()))],
            ),
            state(&["⊢ Q"], vec![tactic("done", -0.1, Effect::Goals(vec![]))]),
        ],
    );
    for (name, effect) in [
        ("one", Effect::Goals(vec![])),
        ("two", Effect::Goals(vec![])),
        ("never", Effect::Error("nope".into())),
    ] {
        let root = format!("⊢ {name}");
        let mut extra = world(
            name,
            &[root.as_str()],
            vec![state(&[root.as_str()], vec![tactic("rfl", -0.2, effect)])],
        );
        w.theorems.append(&mut extra.theorems);
    }
    w
}

/// Yields to the scheduler before each generate call, so concurrent theorems interleave (the
/// doubles themselves never wait).
struct Yielding(SimPolicy);

#[async_trait::async_trait]
impl Policy for Yielding {
    async fn generate(
        &self,
        prompts: &[String],
        n: usize,
    ) -> Result<Vec<Vec<Completion>>, PolicyError> {
        tokio::task::yield_now().await;
        self.0.generate(prompts, n).await
    }
}

async fn sweep(concurrency: usize) -> Vec<formats::results::TheoremResult> {
    let w = four();
    let sim = Sim::with(w.clone(), COSTS, false);
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        search: SearchConfig {
            ebm_weight: 0.5,
            ..config()
        },
        ..sweep_config(concurrency)
    };
    let theorems = theorems(&w);
    let clock: Arc<dyn Clock> = sim.clock.clone();
    run_sweep(
        &config,
        theorems,
        dir.path(),
        SweepOptions {
            clock,
            ..SweepOptions::default()
        },
        Backends {
            policy: Arc::new(Yielding(SimPolicy(sim.clone()))),
            scorer: Some(Arc::new(SimScorer(sim.clone())) as Arc<dyn ValueScorer>),
            env: Arc::new(SimEnv(sim.clone())),
            planner: None,
        },
    )
    .await
    .unwrap();
    let summary = run_folder::Summary::from_dir(dir.path()).unwrap();
    assert_eq!((summary.theorems, summary.proved), (4, 3));
    let unaccounted = summary
        .time
        .iter()
        .find(|p| p.phase == "unaccounted")
        .unwrap();
    assert!(unaccounted.total_ms.abs() < 1e-6, "{unaccounted:?}");
    read_results(&dir.path().join("results.jsonl")).unwrap()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6
}

#[tokio::test]
async fn one_at_a_time_every_phase_is_exact() {
    for r in sweep(1).await {
        let t = &r.time;
        let s = &r.stats;
        assert!(
            s.gen_calls > 0 && s.lean_calls > 0 && s.ebm_calls > 0,
            "{r:?}"
        );
        assert!(close(t.wait_ms, 11.0), "{r:?}");
        assert!(close(t.gen_ms, 300.0 * s.gen_calls as f64), "{r:?}");
        assert!(close(t.lean_ms, 5.0 * s.lean_calls as f64), "{r:?}");
        assert!(close(t.ebm_ms, 7.0 * s.ebm_calls as f64), "{r:?}");
        // The manual clock stands still during our own work.
        assert_eq!(t.engine_ms, 0.0, "{r:?}");
        assert!(
            close(t.wall_ms, t.wait_ms + t.gen_ms + t.lean_ms + t.ebm_ms),
            "{r:?}"
        );
        assert!(close(t.unaccounted_ms, 0.0), "{r:?}");
        assert_eq!(t.gen_latency.count(), s.gen_calls);
        assert_eq!(t.lean_latency.count(), s.lean_calls);
    }
}

#[tokio::test]
async fn concurrent_theorems_leave_nothing_unaccounted() {
    // Theorems share the clock, so one theorem's segment also carries the others' costs;
    // the laps must still tile each theorem's wall time exactly.
    let results = sweep(3).await;
    assert!(
        results
            .iter()
            .any(|r| r.time.gen_ms > 300.0 * r.stats.gen_calls as f64),
        "the theorems overlapped"
    );
    for r in results {
        let t = &r.time;
        let parts = t.wait_ms + t.gen_ms + t.lean_ms + t.ebm_ms + t.engine_ms;
        assert!(t.wall_ms > 0.0 && close(parts, t.wall_ms), "{r:?}");
        assert!(close(t.unaccounted_ms, 0.0), "{r:?}");
    }
}

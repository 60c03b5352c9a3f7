//! The sweep's tail signals: once fewer theorems remain than slots, the running ones pop more
//! nodes per expansion (`sweep.fill_tail`) or speculate (`sweep.speculate_tail`); never
//! before, and never when switched off. In-process doubles; the order of events is forced by
//! a gate, not by timing: the short theorem's first generate call waits until the long
//! theorem has made three calls, so those three happen with both running, and the short
//! theorem's two expansions too.

use crate::engine_support;

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use engine_support::*;
use formats::results::read_results;
use search::config::Config;
use search::policy::{Completion, Policy, PolicyError};
use search::sweep::{run_sweep, Backends, SweepOptions};
use sim::world::{Effect, World, WorldState};
use tokio::sync::watch;

/// `quick` closes in two steps, with a second node on its frontier when it expands the
/// first; `long` is a binary tree of states that never closes, so its frontier always holds
/// at least two nodes.
fn two_theorems() -> World {
    let mut w = world(
        "quick",
        &["⊢ quick"],
        vec![
            state(
                &["⊢ quick"],
                vec![
                    tactic("step", -0.1, Effect::Goals(vec!["⊢ quick2".into()])),
                    tactic("other", -0.5, Effect::Goals(vec!["⊢ quick3".into()])),
                ],
            ),
            state(
                &["⊢ quick2"],
                vec![tactic("simp", -0.1, Effect::Goals(vec![]))],
            ),
        ],
    );
    let mut states = Vec::new();
    let mut level = vec![String::from("⊢ long")];
    for _ in 0..6 {
        let mut next = Vec::new();
        for goal in &level {
            let (left, right) = (format!("{goal}l"), format!("{goal}r"));
            states.push(WorldState {
                goals: vec![goal.clone()],
                tactics: vec![
                    tactic("left", -0.1, Effect::Goals(vec![left.clone()])),
                    tactic("right", -0.2, Effect::Goals(vec![right.clone()])),
                ],
            });
            next.extend([left, right]);
        }
        level = next;
    }
    let mut long = world("long", &["⊢ long"], states);
    w.theorems.append(&mut long.theorems);
    w
}

/// The doubles' policy, recording each call's theorem and prompt count; `quick`'s first call
/// waits for `long`'s third. `long` yields at each call so the other tasks (the short theorem, the
/// sweep loop) get their turns on the test's one thread.
struct Gated {
    inner: SimPolicy,
    calls: Mutex<Vec<(&'static str, usize)>>,
    long_calls: watch::Sender<usize>,
}

#[async_trait]
impl Policy for Gated {
    async fn generate(
        &self,
        prompts: &[String],
        n: usize,
    ) -> Result<Vec<Vec<Completion>>, PolicyError> {
        if prompts[0].contains("quick") {
            let mut calls = self.long_calls.subscribe();
            calls.wait_for(|n| *n >= 3).await.unwrap();
            self.calls.lock().unwrap().push(("quick", prompts.len()));
        } else {
            self.calls.lock().unwrap().push(("long", prompts.len()));
            self.long_calls.send_modify(|n| *n += 1);
            tokio::task::yield_now().await;
        }
        self.inner.generate(prompts, n).await
    }
}

/// What one sweep at concurrency 2 showed.
struct Swept {
    /// Prompt counts of each theorem's generate calls, in order.
    long: Vec<usize>,
    quick: Vec<usize>,
    /// Each theorem's `speculated` counter.
    long_speculated: u64,
    quick_speculated: u64,
}

async fn sweep(fill_tail: bool, speculate_tail: bool) -> Swept {
    let w = two_theorems();
    let sim = Sim::new(w.clone());
    let policy = Arc::new(Gated {
        inner: SimPolicy(sim.clone()),
        calls: Mutex::new(Vec::new()),
        long_calls: watch::Sender::new(0),
    });
    let mut config = Config {
        search: config(),
        ..Config::default()
    };
    config.search.max_nodes = 30;
    config.policy.template = "{state}".into();
    config.sweep.concurrency = 2;
    config.sweep.fill_tail = fill_tail;
    config.sweep.speculate_tail = speculate_tail;
    let dir = tempfile::tempdir().unwrap();
    run_sweep(
        &config,
        theorems(&w),
        dir.path(),
        SweepOptions::default(),
        Backends {
            policy: policy.clone(),
            scorer: None,
            env: Arc::new(SimEnv(sim.clone())),
            planner: None,
        },
    )
    .await
    .unwrap();
    let summary = run_folder::Summary::from_dir(dir.path()).unwrap();
    assert_eq!((summary.theorems, summary.proved), (2, 1));
    let recorded = policy.calls.lock().unwrap().clone();
    let of = |name| -> Vec<usize> {
        recorded
            .iter()
            .filter(|(t, _)| *t == name)
            .map(|(_, p)| *p)
            .collect()
    };
    // The keys reached config.json like every key.
    let written = std::fs::read_to_string(dir.path().join("config.json")).unwrap();
    let written: serde_json::Value = serde_json::from_str(&written).unwrap();
    assert_eq!(written["sweep"]["fill_tail"], fill_tail);
    assert_eq!(written["sweep"]["speculate_tail"], speculate_tail);
    let results = read_results(&dir.path().join("results.jsonl")).unwrap();
    let speculated = |name| {
        results
            .iter()
            .find(|r| r.name == name)
            .unwrap()
            .stats
            .speculated
    };
    Swept {
        long: of("long"),
        quick: of("quick"),
        long_speculated: speculated("long"),
        quick_speculated: speculated("quick"),
    }
}

#[tokio::test]
async fn the_tail_pops_more_nodes_only_when_opted_in() {
    let Swept { long, quick, .. } = sweep(true, false).await;
    assert_eq!(quick, [1, 1]);
    // Both running: one node per expansion.
    assert_eq!(long[..3], [1, 1, 1], "{long:?}");
    // Alone in the tail: its own slot and the free one, two nodes per expansion, from the
    // first call after `quick` ended until the node budget runs out.
    let first_wide = long.iter().position(|&p| p == 2).expect("widened");
    assert!(first_wide >= 3, "{long:?}");
    let after = &long[first_wide..long.len() - 1];
    assert!(after.iter().all(|&p| p == 2), "{long:?}");
    assert_eq!(
        long.iter().sum::<usize>(),
        30,
        "the node budget is the same"
    );

    let Swept { long, quick, .. } = sweep(false, false).await;
    assert_eq!(quick, [1, 1]);
    assert!(long.iter().all(|&p| p == 1), "{long:?}");
    assert_eq!(long.len(), 30);
}

#[tokio::test]
async fn the_tail_speculates_only_when_switched_on() {
    // `quick` expands twice while both theorems run, the second time with a node to
    // speculate on: it must not. `long` goes on alone in the tail, where it does.
    let swept = sweep(false, true).await;
    assert_eq!(swept.quick_speculated, 0);
    assert!(swept.long_speculated > 0);
    assert!(swept.long.iter().all(|&p| p == 1), "{:?}", swept.long);

    let plain = sweep(false, false).await;
    assert_eq!((plain.quick_speculated, plain.long_speculated), (0, 0));
}

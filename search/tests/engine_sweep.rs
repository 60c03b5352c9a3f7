//! The sweep runner with in-process doubles: results, trajectories, summary, resume of
//! `error` theorems, and both stop levels.

mod engine_support;

use std::sync::Arc;

use engine_support::*;
use formats::results::{latest_by_name, read_results};
use formats::trajectory::{read_nodes, trajectory_files};
use search::config::Config;
use search::sweep::{run_sweep, Backends, SweepOptions};
use search::value::ValueScorer;
use sim::world::{Effect, World};

/// Three theorems: two provable, one not.
fn three() -> World {
    let mut w = world(
        "one",
        &["⊢ 1"],
        vec![state(
            &["⊢ 1"],
            vec![tactic("simp", -0.1, Effect::Goals(vec![]))],
        )],
    );
    for (name, provable) in [("two", true), ("three", false)] {
        let root = format!("⊢ {name}");
        let effect = if provable {
            Effect::Goals(vec![])
        } else {
            Effect::Error("nope".into())
        };
        let mut extra = world(
            name,
            &[root.as_str()],
            vec![state(&[root.as_str()], vec![tactic("rfl", -0.2, effect)])],
        );
        w.theorems.append(&mut extra.theorems);
    }
    w
}

fn theorems(w: &World) -> Vec<search::env::Theorem> {
    w.theorems
        .iter()
        .map(|t| search::env::Theorem {
            name: t.name.clone(),
            formal_statement: t.formal_statement.clone(),
            header: None,
            extra: Default::default(),
        })
        .collect()
}

fn setup() -> Config {
    Config {
        search: config(),
        policy: search::config::PolicyConfig {
            template: "{state}".into(),
            ..Default::default()
        },
        ..Config::default()
    }
}

fn backends(sim: &Arc<Sim>, scored: bool) -> Backends {
    Backends {
        policy: Arc::new(SimPolicy(sim.clone())),
        scorer: scored.then(|| Arc::new(SimScorer(sim.clone())) as Arc<dyn ValueScorer>),
        env: Arc::new(SimEnv(sim.clone())),
    }
}

fn options(resume: bool) -> SweepOptions {
    SweepOptions {
        resume,
        concurrency: 2,
        trajectory_batch_theorems: 2,
        ..SweepOptions::default()
    }
}

#[tokio::test]
async fn sweep_writes_results_trajectories_and_summary() {
    let dir = tempfile::tempdir().unwrap();
    let w = three();
    let sim = Sim::new(w.clone());
    let report = run_sweep(
        &setup(),
        theorems(&w),
        dir.path(),
        options(false),
        backends(&sim, true),
    )
    .await
    .unwrap();
    assert_eq!((report.summary.theorems, report.summary.proved), (3, 2));
    assert_eq!(
        (report.searched, report.skipped, report.stopped),
        (3, 0, false)
    );
    let results = read_results(&dir.path().join("results.jsonl")).unwrap();
    assert_eq!(results.len(), 3);
    for r in &results {
        let parts =
            r.time.gen_ms + r.time.lean_ms + r.time.ebm_ms + r.time.wait_ms + r.time.engine_ms;
        assert!((parts + r.time.unaccounted_ms - r.time.wall_ms).abs() < 1e-6);
    }
    // Batches of two theorems: two files, never rewritten.
    let (nodes, failed) = trajectory_files(&dir.path().join("trajectories")).unwrap();
    assert_eq!((nodes.len(), failed.len()), (2, 2));
    let rows = read_nodes(&nodes).unwrap();
    assert_eq!(rows.len(), 5, "three roots and two proof nodes");
    assert!(rows
        .iter()
        .filter(|r| r.status == formats::NodeStatus::Proof)
        .all(|r| r.energy.is_none()));
    assert!(rows
        .iter()
        .filter(|r| r.parent_id.is_none())
        .all(|r| r.energy.is_some()));
    for file in ["summary.json", "report.md", "config.json"] {
        assert!(dir.path().join(file).exists(), "{file}");
    }
    // A finished directory is not silently extended.
    let again = run_sweep(
        &setup(),
        theorems(&w),
        dir.path(),
        options(false),
        backends(&sim, false),
    )
    .await;
    assert!(again.unwrap_err().to_string().contains("--resume"));
}

#[tokio::test]
async fn resume_skips_done_theorems_and_reruns_errors() {
    let dir = tempfile::tempdir().unwrap();
    let full = three();
    // First run: the environment does not know "three", so it ends in error.
    let mut partial = full.clone();
    partial.theorems.retain(|t| t.name != "three");
    let first = Sim::new(partial);
    run_sweep(
        &setup(),
        theorems(&full),
        dir.path(),
        options(false),
        backends(&first, false),
    )
    .await
    .unwrap();
    let results = read_results(&dir.path().join("results.jsonl")).unwrap();
    let error = results.iter().find(|r| r.name == "three").unwrap();
    assert_eq!(error.status, formats::results::SearchStatus::Error);
    assert!(error
        .error
        .as_deref()
        .unwrap()
        .contains("unknown theorem three"));

    let second = Sim::new(full.clone());
    let report = run_sweep(
        &setup(),
        theorems(&full),
        dir.path(),
        options(true),
        backends(&second, false),
    )
    .await
    .unwrap();
    assert_eq!((report.searched, report.skipped), (1, 2));
    assert_eq!(
        second.applied(),
        vec!["rfl"],
        "only the error theorem ran again"
    );
    let all = read_results(&dir.path().join("results.jsonl")).unwrap();
    assert_eq!(all.len(), 4);
    let latest = latest_by_name(all);
    assert_eq!(latest.len(), 3);
    assert_eq!(report.summary.theorems, 3);
    assert_eq!(report.summary.statuses.get("error"), None);
    assert_eq!(report.summary.statuses["exhausted"], 1);
}

#[tokio::test]
async fn a_stop_request_finishes_running_theorems_and_starts_no_more() {
    let w = three();
    for (level, recorded) in [(1u32, 1usize), (2, 0)] {
        let dir = tempfile::tempdir().unwrap();
        let sim = Sim::new(w.clone());
        let (tx, rx) = tokio::sync::watch::channel(0);
        tx.send(level).unwrap();
        let opts = SweepOptions {
            concurrency: 1,
            stop: Some(rx),
            ..options(false)
        };
        let report = run_sweep(
            &setup(),
            theorems(&w),
            dir.path(),
            opts,
            backends(&sim, false),
        )
        .await
        .unwrap();
        assert!(report.stopped);
        assert_eq!(report.summary.theorems, recorded, "stop level {level}");
        // What was recorded has its trajectories on disk; the rest runs on resume.
        let (nodes, _) = trajectory_files(&dir.path().join("trajectories")).unwrap();
        assert_eq!(nodes.len(), recorded);
        let resumed = run_sweep(
            &setup(),
            theorems(&w),
            dir.path(),
            options(true),
            backends(&sim, false),
        )
        .await
        .unwrap();
        assert_eq!(resumed.searched, 3 - recorded);
        assert_eq!(resumed.summary.theorems, 3);
    }
}

#[tokio::test]
async fn a_run_of_errors_stops_the_sweep() {
    let dir = tempfile::tempdir().unwrap();
    let w = three();
    // An environment that knows no theorem: every start fails.
    let sim = Sim::new(World {
        theorems: vec![],
        ..w.clone()
    });
    let opts = SweepOptions {
        concurrency: 1,
        max_consecutive_errors: 2,
        ..options(false)
    };
    let report = run_sweep(
        &setup(),
        theorems(&w),
        dir.path(),
        opts,
        backends(&sim, false),
    )
    .await
    .unwrap();
    assert!(report.stopped);
    assert_eq!(report.searched, 2);
    let reason = report.aborted.unwrap();
    assert!(
        reason.contains("2 theorems in a row") && reason.contains("unknown theorem"),
        "{reason}"
    );
}

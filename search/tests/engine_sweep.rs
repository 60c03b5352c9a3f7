//! The sweep runner with in-process doubles: results, trajectories, summary, resume of
//! `error` theorems, and both stop levels.

use crate::engine_support;

use std::path::Path;
use std::sync::Arc;

use engine_support::*;
use formats::results::{latest_by_name, read_results};
use formats::trajectory::{read_nodes, trajectory_files};
use search::config::Config;
use search::sweep::{run_sweep, still_to_search, Backends, SweepError, SweepOptions, SweepReport};
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

fn setup() -> Config {
    sweep_config(2)
}

fn backends(sim: &Arc<Sim>, scored: bool) -> Backends {
    Backends {
        policy: Arc::new(SimPolicy(sim.clone())),
        scorer: scored.then(|| Arc::new(SimScorer(sim.clone())) as Arc<dyn ValueScorer>),
        env: Arc::new(SimEnv(sim.clone())),
        planner: None,
    }
}

/// `w`'s theorems swept into `dir` over `sim` without a value model, `concurrency` at once.
async fn sweep(
    w: &World,
    sim: &Arc<Sim>,
    dir: &Path,
    concurrency: usize,
    options: SweepOptions,
) -> Result<SweepReport, SweepError> {
    let config = sweep_config(concurrency);
    run_sweep(&config, theorems(w), dir, options, backends(sim, false)).await
}

fn options(resume: bool) -> SweepOptions {
    SweepOptions {
        resume,
        trajectory_batch_theorems: 2,
        ..SweepOptions::default()
    }
}

#[tokio::test]
async fn sweep_writes_results_trajectories_and_run_records() {
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
    let summary = run_folder::Summary::from_dir(dir.path()).unwrap();
    assert_eq!((summary.theorems, summary.proved), (3, 2));
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
    // The reports are the CLI's (`run_folder::write_reports`); the sweep leaves what they read.
    for file in ["config.json", "runs.jsonl", "progress.json"] {
        assert!(dir.path().join(file).exists(), "{file}");
    }
    // A finished directory is not silently extended.
    let again = sweep(&w, &sim, dir.path(), 2, options(false)).await;
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
    sweep(&full, &first, dir.path(), 2, options(false))
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

    // What the Lean workers are warmed for before the resumed sweep is what it searches.
    let inputs = theorems(&full);
    let pending = still_to_search(&inputs, dir.path(), true).unwrap();
    assert_eq!(
        pending.iter().map(|t| &t.name).collect::<Vec<_>>(),
        ["three"]
    );
    assert_eq!(
        still_to_search(&inputs, dir.path(), false).unwrap().len(),
        3
    );

    let second = Sim::new(full.clone());
    let report = sweep(&full, &second, dir.path(), 2, options(true))
        .await
        .unwrap();
    assert_eq!((report.searched, report.skipped), (1, 2));
    assert_eq!(
        second.applied(),
        vec!["rfl"],
        "only the error theorem ran again"
    );
    // One line per theorem: the error's old line went before the re-run appended its new one.
    let all = read_results(&dir.path().join("results.jsonl")).unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(latest_by_name(all.clone()), all);
    let summary = run_folder::Summary::from_dir(dir.path()).unwrap();
    assert_eq!(summary.theorems, 3);
    assert_eq!(summary.statuses.get("error"), None);
    assert_eq!(summary.statuses["exhausted"], 1);
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
            stop: Some(rx),
            ..options(false)
        };
        let report = sweep(&w, &sim, dir.path(), 1, opts).await.unwrap();
        assert!(report.stopped);
        let summary = run_folder::Summary::from_dir(dir.path()).unwrap();
        assert_eq!(summary.theorems, recorded, "stop level {level}");
        // What was recorded has its trajectories on disk; the rest runs on resume.
        let (nodes, _) = trajectory_files(&dir.path().join("trajectories")).unwrap();
        assert_eq!(nodes.len(), recorded);
        let resumed = sweep(&w, &sim, dir.path(), 2, options(true)).await.unwrap();
        assert_eq!(resumed.searched, 3 - recorded);
        assert_eq!(
            run_folder::Summary::from_dir(dir.path()).unwrap().theorems,
            3
        );
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
        max_consecutive_errors: 2,
        ..options(false)
    };
    let report = sweep(&w, &sim, dir.path(), 1, opts).await.unwrap();
    assert!(report.stopped);
    assert_eq!(report.searched, 2);
    let reason = report.aborted.unwrap();
    assert!(
        reason.contains("2 theorems in a row") && reason.contains("unknown theorem"),
        "{reason}"
    );
}

/// Holds back every generate call whose prompt mentions `slow` until released.
struct Gated {
    inner: SimPolicy,
    open: tokio::sync::watch::Receiver<bool>,
}

#[async_trait::async_trait]
impl search::policy::Policy for Gated {
    async fn generate(
        &self,
        prompts: &[String],
        n: usize,
    ) -> Result<Vec<Vec<search::policy::Completion>>, search::policy::PolicyError> {
        if prompts.iter().any(|p| p.contains("slow")) {
            let mut open = self.open.clone();
            open.wait_for(|&o| o)
                .await
                .expect("the test holds the sender");
        }
        self.inner.generate(prompts, n).await
    }
}

/// "one", proved at once, and "slow", whose generate calls wait until `release` sends true.
fn one_and_slow() -> (World, Arc<Sim>, tokio::sync::watch::Sender<bool>, Backends) {
    let mut w = three();
    w.theorems.truncate(1); // "one": proved at once
    let slow = world(
        "slow",
        &["⊢ slow"],
        vec![state(
            &["⊢ slow"],
            vec![tactic("simp", -0.1, Effect::Goals(vec![]))],
        )],
    );
    w.theorems.extend(slow.theorems);
    let sim = Sim::new(w.clone());
    let (release, open) = tokio::sync::watch::channel(false);
    let backends = Backends {
        policy: Arc::new(Gated {
            inner: SimPolicy(sim.clone()),
            open,
        }),
        scorer: None,
        env: Arc::new(SimEnv(sim.clone())),
        planner: None,
    };
    (w, sim, release, backends)
}

/// Waits (a bounded number of real-time steps, not a timing assertion) for `done`.
async fn eventually(what: &str, done: impl Fn() -> bool) {
    for _ in 0..1000 {
        if done() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("never happened: {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_theorem_s_trajectories_wait_at_most_the_flush_interval_on_the_sweep_clock() {
    let (w, sim, release, backends) = one_and_slow();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_owned();
    let options = SweepOptions {
        trajectory_batch_theorems: 16,
        clock: sim.clock.clone(),
        ..SweepOptions::default()
    };
    let sweep = tokio::spawn({
        let out = out.clone();
        let theorems = theorems(&w);
        async move { run_sweep(&setup(), theorems, &out, options, backends).await }
    });
    let results = out.join("results.jsonl");
    let traj = out.join("trajectories");
    let files = move || trajectory_files(&traj).map_or(0, |(nodes, _)| nodes.len());
    eventually("`one` has its result line", || {
        read_results(&results).is_ok_and(|r| r.len() == 1)
    })
    .await;
    // "slow" is still searching: "one" waits in the buffer until the clock says so.
    sim.clock.advance(std::time::Duration::from_secs(59));
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert_eq!(files(), 0, "written before its time");
    sim.clock.advance(std::time::Duration::from_secs(1));
    eventually("the overdue batch is written", || files() == 1).await;
    assert!(!sweep.is_finished());

    release.send(true).unwrap();
    sweep.await.unwrap().unwrap();
    assert_eq!(run_folder::Summary::from_dir(&out).unwrap().proved, 2);
    let (nodes, _) = trajectory_files(&out.join("trajectories")).unwrap();
    assert_eq!(nodes.len(), 2, "the rest went out at the end");
    let first = read_nodes(&nodes[..1]).unwrap();
    assert!(first.iter().all(|r| r.theorem == "one"), "{first:?}");
}

#[tokio::test]
async fn a_statement_lean_rejects_is_not_searched_again_and_does_not_stop_the_sweep() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = three();
    for t in &mut w.theorems[1..] {
        t.formal_statement = format!("theorem {} : rejected := by", t.name);
    }
    let sim = Sim::new(w.clone());
    let opts = SweepOptions {
        max_consecutive_errors: 1,
        ..options(false)
    };
    let report = sweep(&w, &sim, dir.path(), 1, opts).await.unwrap();
    assert_eq!(
        report.aborted, None,
        "rejected statements say nothing of the servers"
    );
    assert_eq!(report.searched, 3);
    let results = read_results(&dir.path().join("results.jsonl")).unwrap();
    let kinds: Vec<_> = results.iter().map(|r| r.error_kind).collect();
    use formats::results::ErrorKind;
    assert_eq!(
        kinds,
        [None, Some(ErrorKind::Statement), Some(ErrorKind::Statement)]
    );
    let line: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(dir.path().join("results.jsonl"))
            .unwrap()
            .lines()
            .nth(1)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        (line["status"].as_str(), line["error_kind"].as_str()),
        (Some("error"), Some("statement"))
    );

    assert!(still_to_search(&theorems(&w), dir.path(), true)
        .unwrap()
        .is_empty());
    let resumed = sweep(&w, &sim, dir.path(), 2, options(true)).await.unwrap();
    assert_eq!((resumed.searched, resumed.skipped), (0, 3));
    assert_eq!(
        read_results(&dir.path().join("results.jsonl")).unwrap(),
        results
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_json_names_what_is_running_and_says_when_the_sweep_ended() {
    let (w, _, release, backends) = one_and_slow();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_owned();
    let options = SweepOptions {
        progress_interval: std::time::Duration::from_millis(20),
        ..SweepOptions::default()
    };
    let sweep = tokio::spawn({
        let out = out.clone();
        let theorems = theorems(&w);
        async move { run_sweep(&setup(), theorems, &out, options, backends).await }
    });
    let progress = || formats::progress::read_progress(&out).ok().flatten();
    eventually("progress.json shows `slow` running alone", || {
        progress().is_some_and(|p| {
            let names: Vec<&str> = p.in_flight.iter().map(|t| t.name.as_str()).collect();
            names == ["slow"] && p.state == formats::progress::SweepState::Running
        })
    })
    .await;
    let snapshot = run_folder::watch::snapshot_of(&out).unwrap();
    assert_eq!((snapshot.total, snapshot.finished), (Some(2), 1));

    release.send(true).unwrap();
    sweep.await.unwrap().unwrap();
    let last = progress().unwrap();
    assert_eq!(last.state, formats::progress::SweepState::Finished);
    assert!(last.in_flight.is_empty());
    assert_eq!((last.total, last.skipped), (2, 0));
}

//! Warming the pool before a sweep (`LeanPool::warm_up`): every worker imports its theorem's
//! header first, each process once, and a worker that fails to warm costs nothing but a log
//! line. Each simulated REPL process logs its own requests (`{pid}` in `--log`).

use crate::support;

use formats::theorems::Theorem;
use lean_bridge::{LeanError, LeanPool};
use serde_json::{json, Value};
use support::lean::{config, logs_per_process, theorem, world_path};
use support::load_world;

const HEADER: &str = "import Mathlib\nopen Nat";

fn imports_of(requests: &[Value], header: &str) -> usize {
    requests
        .iter()
        .filter(|r| **r == json!({ "cmd": header }))
        .count()
}

fn theorems() -> Vec<Theorem> {
    let world = load_world(&world_path());
    let mut again = theorem(&world, "and_intro_steps");
    again.name = "again".into();
    vec![
        theorem(&world, "and_intro_steps"),
        theorem(&world, "add_zero_traps"),
        again,
    ]
}

#[tokio::test]
async fn every_worker_imports_the_header_before_its_first_theorem() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("repl-{pid}.jsonl");
    let mut lean = config(&world_path(), &["--log", log.to_str().unwrap()]);
    lean.workers = 3;
    let pool = LeanPool::new(lean);
    let theorems = theorems();
    assert_eq!(pool.warm_up(&theorems).await, 3);
    // Then one theorem at a time: without the warm-up a single worker would serve them all.
    for t in &theorems {
        let session = pool.start_theorem(t).await.unwrap();
        drop(session);
    }
    pool.shutdown().await;

    let workers = logs_per_process(dir.path());
    assert_eq!(workers.len(), 3, "one process per worker");
    for requests in &workers {
        assert_eq!(requests[0], json!({ "cmd": HEADER }), "{requests:?}");
        assert_eq!(imports_of(requests, HEADER), 1, "{requests:?}");
    }
    let starts = workers
        .iter()
        .flatten()
        .filter(|r| {
            r["cmd"]
                .as_str()
                .is_some_and(|c| c.ends_with(":= by sorry"))
        })
        .count();
    assert_eq!(starts, 3);
}

#[tokio::test]
async fn a_worker_that_fails_to_warm_is_logged_and_the_theorem_that_needs_it_still_reports() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("repl-{pid}.jsonl");
    let mut lean = config(
        &world_path(),
        &[
            "--log",
            log.to_str().unwrap(),
            "--crash-on-cmd",
            "-- this import crashes",
        ],
    );
    lean.workers = 3;
    let pool = LeanPool::new(lean);
    let mut theorems = theorems();
    let missing = "import Mathlib\nimport NoSuchModule";
    theorems[1].header = Some(missing.into());
    theorems[2].header = Some("import Mathlib\n-- this import crashes".into());
    assert_eq!(
        pool.warm_up(&theorems).await,
        1,
        "only the first header loads"
    );

    // The pool goes on: the good theorem starts on its warmed worker, the bad header is the
    // theorem's own error, as without a warm-up.
    pool.start_theorem(&theorems[0]).await.unwrap();
    let started = pool.start_theorem(&theorems[1]).await;
    assert!(
        matches!(started, Err(LeanError::Header { .. })),
        "{:?}",
        started.err()
    );
    pool.shutdown().await;
    let workers = logs_per_process(dir.path());
    let warmed = workers
        .iter()
        .filter(|r| r.first() == Some(&json!({ "cmd": HEADER })))
        .count();
    assert_eq!(warmed, 1);
    assert!(workers
        .iter()
        .any(|r| r.first() == Some(&json!({ "cmd": missing }))));
}

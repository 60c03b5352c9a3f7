//! `stepwise sweep` warms every Lean worker before the first theorem needs it, while the policy
//! server is still loading: each simulated REPL process (its own log, `{pid}` in `--log`)
//! imports the header first and once, even at concurrency 1, where a cold pool would only
//! ever start one worker. The Lean version, which `--resume` compares, is asked before.

use crate::support;

use std::time::{Duration, Instant};

use serde_json::json;
use sim::sglang::SglangOptions;
use support::lean::logs_per_process;
use support::sweep::{ok, refused, results, SWEEP_WORLD};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_worker_imports_the_header_while_the_policy_server_loads() {
    // 503 on the first requests, as SGLang answers while it loads its model.
    let server = SWEEP_WORLD
        .sglang(SglangOptions {
            loading_requests: 2,
            ..SglangOptions::default()
        })
        .await;
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let log = logs.join("repl-{pid}.jsonl");
    ok(SWEEP_WORLD
        .run(
            dir.path(),
            "out",
            &server.url(),
            // The import takes a second, as a header's does: the first theorem waits for it
            // while the other workers start, so the short sweep cannot end before they do.
            &["--log", log.to_str().unwrap(), "--header-delay-ms", "1000"],
            &["--set", "lean.workers=3", "--set", "sweep.concurrency=1"],
        )
        .await);
    assert_eq!(results(&dir.path().join("out")).len(), 6);

    let workers = logs_per_process(&logs);
    assert_eq!(workers.len(), 3, "one process per worker");
    let header = json!({ "cmd": "import Mathlib" });
    let version = json!({ "cmd": "#eval Lean.versionString" });
    for requests in &workers {
        let first = requests.iter().find(|r| **r != version);
        assert_eq!(first, Some(&header), "{requests:?}");
        assert_eq!(
            requests.iter().filter(|r| **r == header).count(),
            1,
            "{requests:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_of_another_setup_is_refused_before_the_header_import_ends() {
    let server = SWEEP_WORLD.sglang(SglangOptions::default()).await;
    let dir = tempfile::tempdir().unwrap();
    ok(SWEEP_WORLD
        .run(
            dir.path(),
            "out",
            &server.url(),
            &[],
            &["--max-theorems", "2"],
        )
        .await);
    // Four theorems are left to search, and importing the header now takes a minute, as Mathlib's does on a cold file cache.
    let started = Instant::now();
    let err = refused(
        SWEEP_WORLD
            .run(
                dir.path(),
                "out",
                &server.url(),
                &["--header-delay-ms", "60000"],
                &["--resume", "--set", "search.max_nodes=21"],
            )
            .await,
    );
    assert!(err.contains("max_nodes"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "refused only after {:?}",
        started.elapsed()
    );
}

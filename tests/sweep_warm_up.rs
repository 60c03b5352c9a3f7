//! `stepwise sweep` warms every Lean worker before the first theorem needs it, while the policy
//! server is still loading: each simulated REPL process (its own log, `{pid}` in `--log`)
//! imports the header first and once, even at concurrency 1, where a cold pool would only
//! ever start one worker.

mod support;

use serde_json::json;
use sim::sglang::SglangOptions;
use support::lean::logs_per_process;
use support::sweep::{ok, results, SWEEP_WORLD};

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
            &["--log", log.to_str().unwrap()],
            &["--set", "lean.workers=3", "--set", "sweep.concurrency=1"],
        )
        .await);
    assert_eq!(results(&dir.path().join("out")).len(), 6);

    let workers = logs_per_process(&logs);
    assert_eq!(workers.len(), 3, "one process per worker");
    let header = json!({ "cmd": "import Mathlib" });
    for requests in &workers {
        assert_eq!(requests.first(), Some(&header), "{requests:?}");
        assert_eq!(
            requests.iter().filter(|r| **r == header).count(),
            1,
            "{requests:?}"
        );
    }
}

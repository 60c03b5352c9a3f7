//! The run manifest, `--resume`'s check against it, and `stepwise merge`, end to end: the real
//! binary, the simulated REPL as its Lean workers (`stepwise sim repl`) and the simulated
//! SGLang and EBM servers in this process, which answer the identity endpoints the real ones
//! do (`/get_model_info`, `#eval Lean.versionString`, the EBM's `/health`).

use crate::support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;

use serde_json::{json, Value};
use sim::sglang::{SglangHandle, SglangOptions};
use support::data;
use support::sweep::{ok, refused, results, SWEEP_WORLD};

async fn sglang(model: &str) -> SglangHandle {
    SWEEP_WORLD
        .sglang(SglangOptions {
            model: model.into(),
            ..SglangOptions::default()
        })
        .await
}

/// `stepwise sweep` into `dir/out` against `url`, with the simulated REPL as Lean.
async fn sweep(dir: &Path, out: &str, url: &str, extra: &[&str]) -> Output {
    SWEEP_WORLD.run(dir, out, url, &[], extra).await
}

fn manifest(dir: &Path) -> Value {
    support::read_json(&dir.join("manifest.json"))
}

/// What a theorem's search decided, without timings.
fn outcomes(dir: &Path) -> BTreeMap<String, Value> {
    support::sweep::outcomes(
        dir,
        &[
            "proved",
            "status",
            "proof",
            "nodes_expanded",
            "nodes_created",
            "candidates_generated",
            "candidates_passed_lean",
        ],
    )
}

fn is_sha256(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_manifest_has_every_field_filled_from_the_simulators() {
    let dir = tempfile::tempdir().unwrap();
    let server = sglang("sim/prover-a").await;
    let ebm = sim::ebm::spawn(Default::default()).await.unwrap();
    // A Lean project directory as `lake` leaves it.
    let project = dir.path().join("project");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::write(
        project.join("lake-manifest.json"),
        r#"{"version": "1.1.0", "packagesDir": ".lake/packages", "packages": [
            {"url": "https://github.com/leanprover-community/mathlib4", "type": "git",
             "name": "mathlib", "rev": "0123abcd", "inputRev": "v4.24.0"},
            {"url": "https://github.com/leanprover-community/repl", "type": "git",
             "name": "REPL", "rev": "4567ef01", "inputRev": "v4.24.0"}]}"#,
    )
    .unwrap();
    ok(sweep(
        dir.path(),
        "run",
        &server.url(),
        &[
            "--shard",
            "0/2",
            "--set",
            &format!("ebm.url={}", json!(ebm.url())),
            "--set",
            "search.ebm_weight=0.5",
            "--set",
            &format!("lean.cwd={}", json!(project)),
        ],
    )
    .await);
    let m = manifest(&dir.path().join("run"));

    assert_eq!(m["config"]["search"]["max_nodes"], 20);
    assert!(m["config"]["policy"].get("urls").is_none(), "{m:#}");
    assert!(is_sha256(&m["config_sha256"]), "{m:#}");
    let theorems_sha = formats::manifest::sha256_file(&data("sweep_theorems.jsonl")).unwrap();
    assert_eq!(m["theorems"]["sha256"], theorems_sha);
    assert_eq!(m["theorems"]["count"], 6);
    assert_eq!(m["theorems"]["shard"], "0/2");
    assert!(m["theorems"].get("benchmark").is_some(), "{m:#}");
    assert_eq!(
        m["models"],
        json!([{"name": "sim/prover-a", "weight_version": "default"}])
    );
    assert_eq!(m["template"]["name"], "deepseek-tactic-state");
    assert!(is_sha256(&m["template"]["sha256"]));
    // `policy.stop` unset: the template's own stop strings are what requests carry.
    assert_eq!(m["stop"], json!(["```", "\n\n", "/- tactic state:"]));
    assert_eq!(m["lean"]["version"], sim::repl::SIM_LEAN_VERSION);
    assert_eq!(m["lean"]["mathlib"], "0123abcd");
    assert_eq!(
        m["ebm"],
        serde_json::to_value(sim::ebm::identity()).unwrap()
    );

    let runs = m["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1);
    let run = &runs[0];
    assert_eq!(run["stepwise"]["version"], env!("CARGO_PKG_VERSION"));
    assert!(run["stepwise"]["commit"]
        .as_str()
        .is_some_and(|c| !c.is_empty()));
    assert_eq!(run["command"][1], "sweep");
    assert!(run["theorems_path"]
        .as_str()
        .unwrap()
        .ends_with("sweep_theorems.jsonl"));
    assert_eq!(run["theorems_selected"], 3);
    assert_eq!(run["placement"]["policy.urls"], json!([server.url()]));
    assert_eq!(run["placement"]["ebm.url"], json!(ebm.url()));
    assert_eq!(run["policy_servers"][0]["url"], server.url());
    assert_eq!(run["policy_servers"][0]["model"]["name"], "sim/prover-a");
    assert_eq!(run["repl_revision"], "4567ef01");
    assert!(run["host"]["name"].as_str().is_some_and(|h| !h.is_empty()));
    assert!(run["host"]["cores"].as_u64().unwrap() >= 1);
    assert!(run["host"]["memory_mb"].as_u64().unwrap() > 0);
    assert!(run["host"]["gpus"].is_array());
    assert!(run["started"].as_str().unwrap().ends_with('Z'));
    assert!(run["ended_unix_ms"].as_u64().unwrap() >= run["started_unix_ms"].as_u64().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_is_refused_on_a_changed_setup_and_accepted_on_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let server = sglang("sim/prover-a").await;
    let other_model = sglang("sim/prover-b").await;
    let same_model_elsewhere = sglang("sim/prover-a").await;
    ok(sweep(dir.path(), "run", &server.url(), &["--max-theorems", "3"]).await);
    let before = std::fs::read_to_string(dir.path().join("run/results.jsonl")).unwrap();

    let err = refused(
        sweep(
            dir.path(),
            "run",
            &server.url(),
            &["--resume", "--set", "policy.template=bfs-prover"],
        )
        .await,
    );
    assert!(
        err.contains("template: deepseek-tactic-state (") && err.contains("-> bfs-prover ("),
        "{err}"
    );
    let err = refused(sweep(dir.path(), "run", &other_model.url(), &["--resume"]).await);
    assert!(
        err.contains("model: sim/prover-a (weights default) -> sim/prover-b (weights default)"),
        "{err}"
    );
    let err = refused(
        sweep(
            dir.path(),
            "run",
            &server.url(),
            &["--resume", "--set", "search.max_nodes=21"],
        )
        .await,
    );
    assert!(err.contains("config search.max_nodes: 20 -> 21"), "{err}");
    let err = refused(
        SWEEP_WORLD
            .run(
                dir.path(),
                "run",
                &server.url(),
                &["--lean-version", "4.9.0"],
                &["--resume"],
            )
            .await,
    );
    assert!(err.contains("Lean version: 4.24.0 -> 4.9.0"), "{err}");
    assert!(err.contains("--force"), "{err}");
    // Refusals touch nothing.
    assert_eq!(
        std::fs::read_to_string(dir.path().join("run/results.jsonl")).unwrap(),
        before
    );
    assert_eq!(
        manifest(&dir.path().join("run"))["runs"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Where a run happens never counts: another server of the same model, more workers.
    ok(sweep(
        dir.path(),
        "run",
        &same_model_elsewhere.url(),
        &["--resume", "--concurrency", "1"],
    )
    .await);
    assert_eq!(results(&dir.path().join("run")).len(), 6);
    let m = manifest(&dir.path().join("run"));
    assert_eq!(m["runs"].as_array().unwrap().len(), 2);
    assert!(m["runs"][1].get("forced").is_none(), "{m:#}");

    ok(sweep(
        dir.path(),
        "run",
        &server.url(),
        &["--resume", "--force", "--set", "search.max_nodes=21"],
    )
    .await);
    let m = manifest(&dir.path().join("run"));
    assert_eq!(m["runs"].as_array().unwrap().len(), 3);
    assert_eq!(
        m["runs"][2]["forced"],
        json!(["config search.max_nodes: 20 -> 21"])
    );
    assert_eq!(m["config"]["search"]["max_nodes"], 21);
}

/// Rewrites `dir/manifest.json` as a stepwise from before `sweep.fill_tail` wrote it.
fn without_fill_tail(dir: &Path) {
    let mut m = manifest(dir);
    m["config"]["sweep"]
        .as_object_mut()
        .unwrap()
        .remove("fill_tail")
        .expect("the key is recorded");
    std::fs::write(
        dir.join("manifest.json"),
        serde_json::to_string_pretty(&m).unwrap(),
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_from_before_a_key_existed_resumes_unless_the_key_leaves_its_default() {
    let dir = tempfile::tempdir().unwrap();
    let server = sglang("sim/prover-a").await;
    ok(sweep(dir.path(), "run", &server.url(), &["--max-theorems", "3"]).await);
    let run = dir.path().join("run");
    without_fill_tail(&run);

    let err = refused(
        sweep(
            dir.path(),
            "run",
            &server.url(),
            &["--resume", "--set", "sweep.fill_tail=true"],
        )
        .await,
    );
    let listed: Vec<&str> = err.lines().filter(|l| l.starts_with("  - ")).collect();
    assert_eq!(
        listed,
        ["  - config sweep.fill_tail: false (absent: the default) -> true"],
        "{err}"
    );

    ok(sweep(dir.path(), "run", &server.url(), &["--resume"]).await);
    assert_eq!(results(&run).len(), 6);
    let m = manifest(&run);
    assert_eq!(m["runs"].as_array().unwrap().len(), 2);
    assert!(m["runs"][1].get("forced").is_none(), "{m:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merged_shards_equal_the_one_machine_sweep_and_a_missing_shard_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let server = sglang("sim/prover-a").await;
    ok(sweep(dir.path(), "whole", &server.url(), &[]).await);
    for i in 0..3 {
        let shard = format!("{i}/3");
        ok(sweep(
            dir.path(),
            &format!("s{i}"),
            &server.url(),
            &["--shard", &shard],
        )
        .await);
    }
    let shard_dir = |i: usize| dir.path().join(format!("s{i}"));
    let merge = |out: &str, shards: &[usize]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_stepwise"));
        cmd.arg("merge").arg(dir.path().join(out));
        cmd.args(shards.iter().map(|&i| shard_dir(i)));
        cmd.output().unwrap()
    };

    // A shard from before a key existed merges with the others at its default.
    without_fill_tail(&shard_dir(1));
    let output = merge("merged", &[0, 1, 2]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let merged = dir.path().join("merged");
    let whole = dir.path().join("whole");
    let names = |d: &Path| -> Vec<String> {
        let mut names: Vec<String> = results(d)
            .iter()
            .map(|r| r["name"].as_str().unwrap().to_owned())
            .collect();
        names.sort();
        names
    };
    // One line per theorem (a sweep writes them as they finish, merge in the file's order),
    // and the same outcomes as one machine.
    assert_eq!(names(&merged), names(&whole));
    assert_eq!(outcomes(&merged), outcomes(&whole));
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(merged.join("summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["theorems"], 6);
    assert_eq!(summary["proved"], 4);
    assert!(merged.join("report.md").exists());
    assert_eq!(
        std::fs::read_to_string(merged.join("runs.jsonl"))
            .unwrap()
            .lines()
            .count(),
        3
    );
    // The shards' generate timelines come along, so report.html plots every shard's servers.
    let timeline_lines = |d: &Path| {
        std::fs::read_to_string(d.join("generate_timeline.jsonl"))
            .unwrap()
            .lines()
            .count()
    };
    let shard_lines: usize = (0..3).map(|i| timeline_lines(&shard_dir(i))).sum();
    assert!(
        shard_lines >= 3,
        "each shard's last tick samples its server"
    );
    assert_eq!(timeline_lines(&merged), shard_lines);
    // Every shard's trajectory files, linked under new numbers: trees of the same theorems.
    let rows = |d: &Path| {
        let (nodes, _) = formats::trajectory::trajectory_files(&d.join("trajectories")).unwrap();
        formats::trajectory::theorems_in(&nodes).unwrap()
    };
    assert_eq!(rows(&merged), rows(&whole));
    let m = manifest(&merged);
    assert_eq!(m["theorems"]["shard"], Value::Null);
    let sources: Vec<&str> = m["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["merged_from"].as_str().unwrap())
        .collect();
    assert_eq!(sources.len(), 3);

    // compare puts each sweep's setup beside the knobs, and names what differs.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_stepwise"))
        .arg("compare")
        .args([&whole, &merged, &shard_dir(0)])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{table}");
    assert!(table.contains("## Setup (manifest.json)"), "{table}");
    assert!(
        table.contains("| sim/prover-a | 4.24.0 | - | deepseek-tactic-state ("),
        "{table}"
    );
    assert!(table.contains("the same setup as"), "{table}");
    assert!(
        table.contains("- theorems shard: unknown -> 0/3"),
        "{table}"
    );

    let output = merge("without-s1", &[0, 2]);
    assert!(!output.status.success());
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(
        err.contains("2 theorems have no result in any shard"),
        "{err}"
    );
    for r in results(&shard_dir(1)) {
        assert!(err.contains(r["name"].as_str().unwrap()), "{err}");
    }
    let output = merge("twice", &[0, 1, 2, 1]);
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("have results in more than one shard"), "{err}");
    assert!(!dir.path().join("without-s1/results.jsonl").exists());
}

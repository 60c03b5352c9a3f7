//! `stepwise sweep` end to end over real processes and HTTP: the real binary, the simulated
//! REPL as its Lean workers (`stepwise sim repl`, which logs every request it receives), and
//! the simulated SGLang server in this process, all driven by `tests/data/sweep_world.json`.

use crate::support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use serde_json::{json, Value};
use sim::sglang::{SglangHandle, SglangOptions};
use sim::world::World;
use support::sweep::{ok, results, run_stepwise, tactics_sent, SweepSetup, SWEEP_WORLD};
use tokio::process::Command;

fn world() -> World {
    SWEEP_WORLD.world()
}

async fn sglang(options: SglangOptions) -> SglangHandle {
    SWEEP_WORLD.sglang(options).await
}

fn sweep_command(dir: &Path, out: &str, url: &str, extra: &[&str]) -> Command {
    SWEEP_WORLD.command(dir, out, url, &[], extra)
}

async fn sweep(dir: &Path, out: &str, url: &str, extra: &[&str]) -> Output {
    ok(SWEEP_WORLD.run(dir, out, url, &[], extra).await)
}

/// What must not depend on transport, retries or sampling mode, per theorem.
fn outcomes(dir: &Path) -> BTreeMap<String, Value> {
    support::sweep::outcomes(
        dir,
        &[
            "proved",
            "status",
            "proof_tactics",
            "proof",
            "nodes_expanded",
            "nodes_created",
            "gen_calls",
            "candidates_generated",
            "candidates_unique",
            "candidates_banned",
            "candidates_passed_lean",
        ],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sweep_proves_the_provable_and_nothing_else() {
    let server = sglang(SglangOptions::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let output = sweep(dir.path(), "base", &server.url(), &[]).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("proved 4 of 6"), "{stdout}");

    let out = dir.path().join("base");
    let by_name: BTreeMap<String, Value> = results(&out)
        .into_iter()
        .map(|r| (r["name"].as_str().unwrap().to_owned(), r))
        .collect();
    assert_eq!(by_name.len(), 6);
    for name in ["sw_direct", "sw_backtrack", "sw_chain", "sw_two_way"] {
        assert_eq!(
            by_name[name]["status"], "proved",
            "{name}: {}",
            by_name[name]
        );
    }
    // The top-ranked first step leads nowhere; the proof backtracks past it.
    assert_eq!(
        by_name["sw_backtrack"]["proof_tactics"],
        json!(["constructor", "exact hp", "exact hq"])
    );
    // goals: [] without `Completed` is a trap, never a proof.
    assert_eq!(by_name["sw_trap"]["status"], "exhausted");
    assert_eq!(by_name["sw_trap"]["incomplete"], 2);
    assert_eq!(by_name["sw_hard"]["status"], "exhausted");
    assert_eq!(by_name["sw_two_way"]["transpositions"], 1);
    // sorry and admit were the most likely completions of sw_direct; they were dropped.
    assert!(by_name["sw_direct"]["candidates_banned"].as_u64().unwrap() >= 2);
    let sent = tactics_sent(&dir.path().join("base.log"));
    assert!(sent.iter().any(|t| t == "simp"), "{sent:?}");
    assert!(
        !sent.iter().any(|t| t == "sorry" || t == "admit"),
        "{sent:?}"
    );
    // Banning is by whole identifier: a lemma named `..._sorry` is fair game.
    assert!(
        sent.iter().any(|t| t == "exact mul_one_sorry x"),
        "{sent:?}"
    );
    // Every theorem's time is accounted for.
    for r in by_name.values() {
        let parts: f64 = [
            "gen_ms",
            "lean_ms",
            "ebm_ms",
            "wait_ms",
            "engine_ms",
            "unaccounted_ms",
        ]
        .iter()
        .map(|k| r[*k].as_f64().unwrap())
        .sum();
        assert!((parts - r["wall_ms"].as_f64().unwrap()).abs() < 1e-6, "{r}");
    }

    // Trajectories: every node, labelled along the proofs.
    let (node_files, failed_files) =
        formats::trajectory::trajectory_files(&out.join("trajectories")).unwrap();
    let nodes = formats::trajectory::read_nodes(&node_files).unwrap();
    let path: Vec<_> = nodes
        .iter()
        .filter(|n| n.theorem == "sw_backtrack" && n.label == 1)
        .map(|n| (n.tactic.clone(), n.remaining_depth))
        .collect();
    assert_eq!(
        path,
        vec![
            (None, Some(3)),
            (Some("constructor".into()), Some(2)),
            (Some("exact hp".into()), Some(1)),
            (Some("exact hq".into()), Some(0)),
        ]
    );
    let expanded: u64 = by_name
        .values()
        .map(|r| r["nodes_created"].as_u64().unwrap())
        .sum();
    assert_eq!(nodes.len() as u64, expanded);
    let failed = formats::trajectory::read_failed(&failed_files).unwrap();
    assert!(failed
        .iter()
        .any(|f| f.tactic == "refine ?_" && f.outcome == "incomplete"));

    // The report, and its rebuild from results.jsonl.
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("Proved 4 / 6"), "{report}");
    let summary: Value =
        serde_json::from_slice(&run_stepwise(&["summary", out.to_str().unwrap(), "--json"]).stdout)
            .unwrap();
    assert_eq!(summary["proved"], 4);
    assert_eq!(summary["config"]["search"]["num_candidates"], 4);
    // Generate-server use, from the client's timeline over the run.
    let server_use = &summary["generate_servers"][0];
    assert_eq!(server_use["url"], server.url());
    let gen_calls: u64 = by_name
        .values()
        .map(|r| r["gen_calls"].as_u64().unwrap())
        .sum();
    assert_eq!(server_use["requests"], gen_calls);
    assert_eq!(summary["runs"], 1);
    let compare = run_stepwise(&["compare", out.to_str().unwrap(), out.to_str().unwrap()]);
    let table = String::from_utf8_lossy(&compare.stdout);
    // The knob table (no knob differs: no extra columns), then the setups from the manifests.
    let knobs = table.split("\n\n").next().unwrap();
    assert!(
        knobs.lines().count() == 3 && knobs.contains("4/6"),
        "{table}"
    );
    assert!(table.contains("the same setup as"), "{table}");
}

/// Theorems whose one proof step is a line of two tactics: see `tests/data/one_tactic_world.json`.
const ONE_TACTIC: SweepSetup = SweepSetup {
    world: "one_tactic_world.json",
    theorems: "one_tactic_theorems.jsonl",
    config: support::sweep::CONFIG,
};

/// The repl parses ONE tactic per request, and answers `t1; t2` "expected end of input"
/// (repl issue #43; the simulated REPL does too): the model's `rw [h]; norm_num` reaches
/// Lean as one `( … )` block and proves the theorem, while the tree, the failed attempts and
/// the whole-proof check keep the line as the model wrote it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_of_two_tactics_reaches_lean_as_one_and_proves() {
    let server = ONE_TACTIC.sglang(SglangOptions::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let answers = dir.path().join("answers.log");
    let flags = ["--log-answers", answers.to_str().unwrap()];
    ok(ONE_TACTIC
        .run(dir.path(), "out", &server.url(), &flags, &[])
        .await);

    let out = dir.path().join("out");
    let by_name: BTreeMap<String, Value> = results(&out)
        .into_iter()
        .map(|r| (r["name"].as_str().unwrap().to_owned(), r))
        .collect();
    for (name, step) in [
        ("ot_rw", "rw [h]; norm_num"),
        ("ot_hyp", "norm_num at h ⊢; linarith"),
    ] {
        let r = &by_name[name];
        assert_eq!(r["status"], "proved", "{r}");
        assert_eq!(r["proof_tactics"], json!([step]), "{r}");
        let proof = r["proof"].as_str().unwrap();
        assert!(
            proof.trim_end().ends_with(&format!("by\n  {step}")),
            "{proof}"
        );
    }
    let sent = tactics_sent(&dir.path().join("out.log"));
    assert!(sent.iter().any(|t| t == "(rw [h]; norm_num\n)"), "{sent:?}");
    assert!(!sent.iter().any(|t| t == "rw [h]; norm_num"), "{sent:?}");
    let answers = support::read_jsonl(&answers);
    assert!(!answers.is_empty());
    for answer in &answers {
        assert!(
            !answer.to_string().contains("expected end of input"),
            "{answer}"
        );
    }

    let (node_files, failed_files) =
        formats::trajectory::trajectory_files(&out.join("trajectories")).unwrap();
    let nodes = formats::trajectory::read_nodes(&node_files).unwrap();
    assert!(nodes
        .iter()
        .any(|n| n.theorem == "ot_rw" && n.tactic.as_deref() == Some("rw [h]; norm_num")));
    let failed = formats::trajectory::read_failed(&failed_files).unwrap();
    let attempt = failed
        .iter()
        .find(|f| f.theorem == "ot_rw")
        .expect("the more likely candidate failed first");
    assert_eq!(
        (attempt.tactic.as_str(), attempt.outcome.as_str()),
        ("simp at h; omega", "error")
    );
    assert!(
        attempt.message.contains("omega could not prove the goal"),
        "{}",
        attempt.message
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_and_sampling_modes_do_not_change_results() {
    let dir = tempfile::tempdir().unwrap();
    let server = sglang(SglangOptions::default()).await;
    sweep(dir.path(), "repeat", &server.url(), &[]).await;
    let baseline = outcomes(&dir.path().join("repeat"));
    assert_eq!(baseline.len(), 6);

    let flaky = sglang(SglangOptions {
        fail_every: Some(9),
        ..SglangOptions::default()
    })
    .await;
    sweep(dir.path(), "flaky", &flaky.url(), &[]).await;
    assert!(
        flaky.log.entries().iter().any(|e| e.status == 503),
        "503s were sent"
    );
    assert_eq!(
        outcomes(&dir.path().join("flaky")),
        baseline,
        "503 every 9th request"
    );

    sweep(
        dir.path(),
        "n",
        &server.url(),
        &["--set", "policy.sampling=n"],
    )
    .await;
    assert_eq!(outcomes(&dir.path().join("n")), baseline, "sampling = n");

    sweep(
        dir.path(),
        "openai",
        &server.url(),
        &["--set", "policy.backend=openai"],
    )
    .await;
    assert!(server
        .log
        .entries()
        .iter()
        .any(|e| e.path == "/v1/completions"));
    assert_eq!(
        outcomes(&dir.path().join("openai")),
        baseline,
        "OpenAI backend"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_sweep_resumes_with_each_theorem_once() {
    let dir = tempfile::tempdir().unwrap();
    // Slow generation so the kill lands mid-sweep.
    let server = sglang(SglangOptions {
        delay_per_request: Duration::from_millis(150),
        ..SglangOptions::default()
    })
    .await;
    let out = dir.path().join("killed");
    let mut child = sweep_command(dir.path(), "killed", &server.url(), &["--concurrency", "1"])
        .spawn()
        .unwrap();
    let results_file = out.join("results.jsonl");
    let lines = || std::fs::read_to_string(&results_file).map_or(0, |t| t.lines().count());
    while lines() < 2 {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the sweep ended before the kill"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().await.unwrap(); // SIGKILL
    let before = lines();
    assert!(before < 6, "killed mid-sweep");

    let output = sweep(dir.path(), "killed", &server.url(), &["--resume"]).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("proved 4 of 6"), "{stdout}");
    let names: Vec<String> = results(&out)
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_owned())
        .collect();
    let mut unique = names.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(names.len(), 6, "{names:?}");
    assert_eq!(unique.len(), 6, "{names:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupt_stops_cleanly_and_resume_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let server = sglang(SglangOptions {
        delay_per_request: Duration::from_millis(200),
        ..SglangOptions::default()
    })
    .await;
    let out = dir.path().join("interrupted");
    let mut child = sweep_command(
        dir.path(),
        "interrupted",
        &server.url(),
        &["--concurrency", "1"],
    )
    .stdout(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    let results_file = out.join("results.jsonl");
    while std::fs::read_to_string(&results_file).map_or(0, |t| t.lines().count()) < 1 {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the sweep ended before the interrupt"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pid = child.id().unwrap().to_string();
    let status = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    let output = child.wait_with_output().await.unwrap();
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("stopped early"), "{stdout}");
    // Everything recorded is complete: results, their trajectories, the summary.
    let recorded = results(&out).len();
    assert!((1..6).contains(&recorded), "{recorded}");
    let (node_files, _) = formats::trajectory::trajectory_files(&out.join("trajectories")).unwrap();
    let nodes = formats::trajectory::read_nodes(&node_files).unwrap();
    let mut theorems: Vec<&str> = nodes.iter().map(|n| n.theorem.as_str()).collect();
    theorems.dedup();
    assert_eq!(theorems.len(), recorded);
    assert!(out.join("summary.json").exists());

    sweep(dir.path(), "interrupted", &server.url(), &["--resume"]).await;
    assert_eq!(results(&out).len(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_down_policy_server_is_named_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on: bind one, then free it.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let output = sweep_command(
        dir.path(),
        "down",
        &url,
        &["--set", "policy.startup_timeout=1"],
    )
    .output()
    .await
    .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&url), "{stderr}");
    // A refused port may be a server still loading: it is waited for, and the user told.
    assert!(stderr.contains("policy.startup_timeout"), "{stderr}");
    assert!(!dir.path().join("down").join("results.jsonl").exists());
}

/// An SGLang older than 0.5.3 answers every request carrying `stop_regex` with a plain-text
/// 500: the start-up check finds it with a one-token request, the same without `stop_regex`
/// and the first again, and stops the sweep naming the fix before any theorem spends its
/// retries on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sglang_without_stop_regex_is_named_before_any_theorem() {
    let dir = tempfile::tempdir().unwrap();
    let server = sglang(SglangOptions {
        no_stop_regex: true,
        ..SglangOptions::default()
    })
    .await;
    let output = sweep_command(dir.path(), "old", &server.url(), &[])
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("HTTP 500: Internal Server Error"),
        "{stderr}"
    );
    assert!(stderr.contains("set policy.stop_regex = []"), "{stderr}");
    assert!(results(&dir.path().join("old")).is_empty());
    let generates: Vec<(bool, u16)> = server
        .log
        .entries()
        .into_iter()
        .filter(|e| e.path == "/generate")
        .map(|e| {
            (
                e.body["sampling_params"].get("stop_regex").is_some(),
                e.status,
            )
        })
        .collect();
    assert_eq!(generates, [(true, 500), (false, 200), (true, 500)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_value_model_children_are_scored_in_one_request_per_expansion() {
    let dir = tempfile::tempdir().unwrap();
    let server = sglang(SglangOptions::default()).await;
    let ebm = sim::ebm::spawn(Default::default()).await.unwrap();
    sweep(dir.path(), "plain", &server.url(), &[]).await;
    let ebm_url = format!("ebm.url={}", ebm.url());
    sweep(
        dir.path(),
        "ebm",
        &server.url(),
        &["--set", &ebm_url, "--set", "search.ebm_weight=0.5"],
    )
    .await;
    let out = dir.path().join("ebm");
    let rows = results(&out);
    assert_eq!(rows.iter().filter(|r| r["proved"] == true).count(), 4);
    for r in &rows {
        // The root, then at most one request per expansion step.
        let calls = r["ebm_calls"].as_u64().unwrap();
        assert!(
            calls >= 1 && calls <= 1 + r["gen_calls"].as_u64().unwrap(),
            "{r}"
        );
    }
    let (node_files, _) = formats::trajectory::trajectory_files(&out.join("trajectories")).unwrap();
    let nodes = formats::trajectory::read_nodes(&node_files).unwrap();
    for n in &nodes {
        match n.status.as_str() {
            "proof" | "unverified" => assert_eq!(n.energy, None, "{n:?}"),
            _ => {
                let expected = sim::ebm::energy(&n.state);
                assert!((n.energy.unwrap() - expected).abs() < 1e-9, "{n:?}");
            }
        }
    }
    let plain = dir.path().join("plain");
    let compare = run_stepwise(&["compare", plain.to_str().unwrap(), out.to_str().unwrap()]);
    let table = String::from_utf8_lossy(&compare.stdout);
    let header = table.lines().next().unwrap();
    assert!(
        header.contains("EBM") && header.contains("ebm_weight"),
        "{table}"
    );
    assert!(!header.contains("num_candidates"), "{table}");
}

/// A state `ebm serve` cannot score (its 500 for any request holding it) costs only that
/// node its energy: the theorem is still searched and proved, and the count says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_the_value_model_cannot_score_costs_only_its_energy() {
    let dir = tempfile::tempdir().unwrap();
    let server = sglang(SglangOptions::default()).await;
    let ebm = sim::ebm::spawn(sim::ebm::EbmOptions {
        unscorable: vec!["hq : q".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    let ebm_url = format!("ebm.url={}", ebm.url());
    // One at a time: `sw_direct`'s states are scored before `sw_backtrack` starts, so the
    // client knows a state the server scores (how it tells bad states from a bad server).
    sweep(
        dir.path(),
        "ebm",
        &server.url(),
        &[
            "--set",
            &ebm_url,
            "--set",
            "search.ebm_weight=0.5",
            "--concurrency",
            "1",
        ],
    )
    .await;
    let out = dir.path().join("ebm");
    let rows = results(&out);
    assert_eq!(
        rows.iter().filter(|r| r["proved"] == true).count(),
        4,
        "{rows:#?}"
    );
    for r in &rows {
        let unscored = r["ebm_unscored"].as_u64().unwrap();
        match r["name"].as_str().unwrap() {
            "sw_backtrack" => assert!(unscored >= 1 && r["proved"] == true, "{r}"),
            _ => assert_eq!(unscored, 0, "{r}"),
        }
    }
    let (node_files, _) = formats::trajectory::trajectory_files(&out.join("trajectories")).unwrap();
    for n in formats::trajectory::read_nodes(&node_files).unwrap() {
        if n.state.contains("hq : q") {
            assert_eq!(n.energy, None, "{n:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_cover_the_theorems_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = sglang(SglangOptions::default()).await;
    let mut names = Vec::new();
    let mut proved = 0;
    for shard in ["0/2", "1/2"] {
        let out = format!("shard{}", &shard[..1]);
        sweep(dir.path(), &out, &server.url(), &["--shard", shard]).await;
        let rows = results(&dir.path().join(&out));
        assert_eq!(rows.len(), 3, "{shard}");
        proved += rows.iter().filter(|r| r["proved"] == true).count();
        names.extend(rows.iter().map(|r| r["name"].as_str().unwrap().to_owned()));
    }
    names.sort();
    let mut all: Vec<String> = world().theorems.iter().map(|t| t.name.clone()).collect();
    all.sort();
    assert_eq!(names, all);
    assert_eq!(proved, 4);

    sweep(
        dir.path(),
        "first2",
        &server.url(),
        &["--max-theorems", "2"],
    )
    .await;
    assert_eq!(results(&dir.path().join("first2")).len(), 2);
}

fn proved_names(dir: &Path) -> Vec<String> {
    results(dir)
        .into_iter()
        .filter(|r| r["proved"] == true)
        .map(|r| r["name"].as_str().unwrap().to_owned())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// Issue 11, "What it must show": `backend = "openai"` against a server that enforces model
/// names as vLLM does (404 "The model `default` does not exist."), with `policy.model` unset
/// and a REPL dying on its 7th request, proves what the fault-free SGLang sweep proves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_with_model_unset_against_a_name_enforcing_server_proves_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let server = sglang(SglangOptions::default()).await;
    sweep(dir.path(), "base", &server.url(), &[]).await;

    let strict = sglang(SglangOptions {
        enforce_model: true,
        model: "deepseek-ai/DeepSeek-Prover-V2-7B".into(),
        ..SglangOptions::default()
    })
    .await;
    ok(SWEEP_WORLD
        .run(
            dir.path(),
            "strict",
            &strict.url(),
            &["--crash-after", "6"],
            &["--set", "policy.backend=openai"],
        )
        .await);
    let base = proved_names(&dir.path().join("base"));
    assert_eq!(base.len(), 4, "{base:?}");
    assert_eq!(proved_names(&dir.path().join("strict")), base);
    let log = strict.log.entries();
    let completions: Vec<_> = log.iter().filter(|e| e.path == "/v1/completions").collect();
    assert!(!completions.is_empty());
    assert!(completions.iter().all(|e| e.status == 200));
    assert!(completions
        .iter()
        .all(|e| e.body["model"] == "deepseek-ai/DeepSeek-Prover-V2-7B"));
}

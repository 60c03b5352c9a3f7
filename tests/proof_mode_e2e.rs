//! `search.expansion = "proof"` end to end: the real binary, the simulated REPL as its Lean
//! worker (logging every request) and the simulated SGLang, whose model writes the rest of the
//! proof after each sampled tactic and closes the code fence, as DeepSeek-Prover does.

use crate::support;

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use serde_json::{json, Value};
use sim::sglang::SglangOptions;
use support::sweep::{ok, results, SweepSetup, SWEEP_WORLD};

/// One theorem whose root samples share a prefix: see `tests/data/proof_world.json`.
const SHARED: SweepSetup = SweepSetup {
    world: "proof_world.json",
    theorems: "proof_theorems.jsonl",
    config: support::sweep::CONFIG,
};

const PROOF: [&str; 2] = ["--set", "search.expansion=proof"];

/// `stepwise sweep` into `dir/out` with one REPL process and one theorem at a time (so the
/// `proofState` numbers in the REPL's log name one state each); results by theorem name.
async fn sweep(
    setup: &SweepSetup,
    dir: &Path,
    out: &str,
    url: &str,
    extra: &[&str],
) -> BTreeMap<String, Value> {
    let mut args = vec!["--concurrency", "1", "--set", "lean.workers=1"];
    args.extend(extra);
    ok(setup.run(dir, out, url, &[], &args).await);
    results(&dir.join(out))
        .into_iter()
        .map(|r| (r["name"].as_str().unwrap().to_owned(), r))
        .collect()
}

/// (proofState, tactic) of every tactic request the simulated REPL logged to `dir/out.log`.
fn tactic_requests(dir: &Path, out: &str) -> Vec<(u64, String)> {
    support::read_jsonl(&dir.join(format!("{out}.log")))
        .into_iter()
        .filter_map(|r| Some((r["proofState"].as_u64()?, r["tactic"].as_str()?.to_owned())))
        .collect()
}

fn total(results: &BTreeMap<String, Value>, key: &str) -> u64 {
    results.values().map(|r| r[key].as_u64().unwrap()).sum()
}

/// A tactic that is `sorry` or `admit` or uses one as a word (not `mul_one_sorry x`).
fn banned(tactic: &str) -> bool {
    tactic
        .split(|c: char| c.is_whitespace() || "()[],".contains(c))
        .any(|w| w == "sorry" || w == "admit")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proof_mode_proves_what_tactic_mode_proves_with_fewer_generate_calls() {
    let server = SWEEP_WORLD.sglang(SglangOptions::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let url = server.url();
    let tactic = sweep(&SWEEP_WORLD, dir.path(), "tactic", &url, &[]).await;
    let proof = sweep(&SWEEP_WORLD, dir.path(), "proof", &url, &PROOF).await;
    assert!(tactic.values().any(|r| r["proved"] == true));
    for (name, r) in &tactic {
        if r["proved"] == true {
            assert_eq!(proof[name]["proved"], true, "{name}: {}", proof[name]);
        }
    }
    assert!(
        total(&proof, "gen_calls") < total(&tactic, "gen_calls"),
        "proof {} vs tactic {}",
        total(&proof, "gen_calls"),
        total(&tactic, "gen_calls")
    );
    // One generate call made a chain of depth 2: the whole proof of sw_chain.
    assert_eq!(proof["sw_chain"]["gen_calls"], 1);
    assert_eq!(tactic["sw_chain"]["gen_calls"], 2);
    assert_eq!(
        proof["sw_chain"]["proof_tactics"],
        json!(["subst h", "norm_num"])
    );
    // Root, `subst h`'s child and the closed node.
    assert_eq!(proof["sw_chain"]["nodes_created"], 3);
    let sent = tactic_requests(dir.path(), "proof");
    // In the REPL's log, `norm_num` went to the state `subst h` made, not to the root.
    let state_of = |tactic: &str| {
        let at: Vec<u64> = sent.iter().filter(|s| s.1 == tactic).map(|s| s.0).collect();
        assert_eq!(at.len(), 1, "{tactic}: {sent:?}");
        at[0]
    };
    assert!(state_of("norm_num") > state_of("subst h"), "{sent:?}");
    // No Lean call for a prefix already replayed: every (state, tactic) pair is sent once.
    let distinct: HashSet<&(u64, String)> = sent.iter().collect();
    assert_eq!(distinct.len(), sent.len(), "{sent:?}");
    // The model's continuations hold `sorry` (sw_direct's most likely sample); none reached
    // Lean, and they are counted as banned.
    assert!(!sent.iter().any(|(_, t)| banned(t)), "{sent:?}");
    assert!(proof["sw_direct"]["candidates_banned"].as_u64().unwrap() > 0);
    // The requests were the proof settings: the fence as stop, the proof token limit.
    let generate = server
        .log
        .entries()
        .into_iter()
        .rfind(|e| e.path == "/generate")
        .unwrap();
    assert_eq!(generate.body["sampling_params"]["stop"], json!(["```"]));
    assert_eq!(generate.body["sampling_params"]["max_new_tokens"], 1024);
    // Tokens are counted, and so are those no replay used (after a failing tactic, or the
    // rest of the proof tactic mode throws away).
    for run in [&tactic, &proof] {
        assert!(total(run, "tokens_generated") > total(run, "tokens_unreplayed"));
        assert!(total(run, "tokens_unreplayed") > 0);
        assert!(total(run, "tokens_prompt") > 0);
    }
    let summary = support::read_json(&dir.path().join("proof/summary.json"));
    assert_eq!(summary["mode"], "proof");
    assert_eq!(
        summary["tokens_unreplayed"].as_u64().unwrap(),
        total(&proof, "tokens_unreplayed")
    );
    assert!(summary["tokens_per_proof"].as_f64().unwrap() > 0.0);
    let report = std::fs::read_to_string(dir.path().join("proof/report.md")).unwrap();
    assert!(report.starts_with("# Sweep report (proof)"), "{report}");
    let row = format!(
        "| tokens unreplayed | {} |",
        total(&proof, "tokens_unreplayed")
    );
    assert!(report.contains(&row), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pass_at_n_checks_whole_samples_and_says_so() {
    let server = SWEEP_WORLD.sglang(SglangOptions::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut extra = PROOF.to_vec();
    extra.extend(["--set", "search.max_nodes=1"]);
    let results = sweep(&SWEEP_WORLD, dir.path(), "pass", &server.url(), &extra).await;
    // One generate call per theorem, each sample checked whole: no tactic reached Lean.
    assert!(results.values().all(|r| r["gen_calls"] == 1), "{results:?}");
    assert_eq!(tactic_requests(dir.path(), "pass"), []);
    let commands = support::read_jsonl(&dir.path().join("pass.log"))
        .into_iter()
        .filter(|r| r["cmd"].as_str().is_some_and(|c| c.contains("sw_chain")))
        .count();
    assert!(commands > 0);
    assert_eq!(results["sw_chain"]["proved"], true);
    let report = std::fs::read_to_string(dir.path().join("pass/report.md")).unwrap();
    assert!(report.starts_with("# Sweep report (pass@4)"), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_prefix_reaches_lean_once_and_banned_tactics_never() {
    let server = SHARED.sglang(SglangOptions::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut extra = PROOF.to_vec();
    extra.extend(["--set", "search.num_candidates=3"]);
    let results = sweep(&SHARED, dir.path(), "shared", &server.url(), &extra).await;
    let r = &results["pm_shared"];
    // The model's three samples at the root, most likely first: `constructor, exact hp,
    // exact hp`, `constructor, sorry`, and the proof `constructor, exact hp, exact hq`.
    assert_eq!(r["proved"], true, "{r}");
    assert_eq!(r["gen_calls"], 1);
    assert_eq!(
        r["proof_tactics"],
        json!(["constructor", "exact hp", "exact hq"])
    );
    let sent: Vec<String> = tactic_requests(dir.path(), "shared")
        .into_iter()
        .map(|(_, t)| t)
        .collect();
    // `constructor` and `exact hp` begin all three samples but reached Lean once each; the
    // second `exact hp` is the failing one at the next state.
    assert_eq!(sent, ["constructor", "exact hp", "exact hp", "exact hq"]);
    assert_eq!(r["replay_reused"], 3);
    assert_eq!(r["candidates_banned"], 1);
    // The failing `exact hp` is a failed attempt; the tokens after it and after `sorry`
    // were never replayed.
    assert!(r["tokens_unreplayed"].as_u64().unwrap() > 0);
    assert!(
        std::fs::read_dir(dir.path().join("shared/failed_attempts"))
            .unwrap()
            .count()
            > 0
    );
}

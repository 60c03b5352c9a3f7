//! `search.decompose` end to end: the real binary in proof mode, the simulated REPL as its
//! Lean worker (logging requests and answers) and the simulated SGLang, whose model writes
//! `have` chains with right statements and wrong inner proofs (`tests/data/decompose_world.json`:
//! `dc_chain`; `dc_false`, whose tempting `have` is false; `dc_shared`, whose lemma `hodd`
//! two branches need; `dc_plain`, which plain search proves; `dc_planned`, which needs the
//! planner, `planner_e2e`).

use crate::support;

use std::collections::{BTreeMap, HashSet};

use serde_json::{json, Value};
use sim::sglang::SglangOptions;
use support::sweep::{ok, proved, results, total, DECOMPOSE_WORLD};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decomposition_proves_have_chains_plain_proof_mode_cannot_with_no_more_generate_calls() {
    let server = DECOMPOSE_WORLD.sglang(SglangOptions::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let url = server.url();
    let plain = DECOMPOSE_WORLD
        .proof_sweep(dir.path(), "plain", &url, &[])
        .await;
    let decomposed = DECOMPOSE_WORLD
        .proof_sweep(dir.path(), "dc", &url, &["--set", "search.decompose=true"])
        .await;
    assert_eq!(proved(&plain), ["dc_plain"]);
    assert_eq!(proved(&decomposed), ["dc_chain", "dc_plain", "dc_shared"]);
    assert!(
        total(&decomposed, "gen_calls") <= total(&plain, "gen_calls"),
        "decompose {} vs plain {}",
        total(&decomposed, "gen_calls"),
        total(&plain, "gen_calls")
    );
    for name in ["dc_chain", "dc_shared"] {
        assert_eq!(decomposed[name]["proved_by_decomposition"], 1, "{name}");
        let tactics = decomposed[name]["proof_tactics"].to_string();
        assert!(!tactics.contains("sorry"), "{name}: {tactics}");
    }
    assert_eq!(
        decomposed["dc_chain"]["proof_tactics"],
        json!([
            "have h₁ : (a - b) ^ 2 ≥ 0 := by\n  positivity",
            "have h₂ : a * b = (4 - (a - b) ^ 2) / 4 := by\n  nlinarith [h₀, h₁]",
            "nlinarith [h₁, h₂]"
        ])
    );

    // The false `have`: its subgoal opened, counted, never proved; the theorem not proved.
    let false_have = &decomposed["dc_false"];
    assert_eq!(false_have["proved"], false);
    assert_eq!(false_have["holes_opened"], 1);
    assert_eq!(false_have["subgoals_opened"], 1);
    assert_eq!(false_have["subgoals_proved"], 0);

    // dc_shared: the lemma `hodd` is a hole of two conditional nodes (one also needs the
    // false `hsq`); the second reused its subgoal, and its assembled proof is the one proved.
    let shared = &decomposed["dc_shared"];
    assert_eq!(shared["conditional_nodes"], 2, "{shared}");
    assert_eq!(shared["subgoals_reused"], 1, "{shared}");
    assert_eq!(
        shared["proof_tactics"][0],
        "have hodd : n % 2 = 1 := by\n  omega"
    );
    let verdicts = DECOMPOSE_WORLD.verify(dir.path(), &decomposed);
    assert_eq!(verdicts.len(), 3);
    assert!(
        verdicts.iter().all(|v| v["verified"] == true),
        "{verdicts:?}"
    );

    // The REPL saw the holes, and tactics sent to the sorries' own proof states.
    let requests = support::read_jsonl(&dir.path().join("dc.log"));
    let answers = support::read_jsonl(&dir.path().join("dc.answers"));
    assert_eq!(requests.len(), answers.len());
    let holes = requests
        .iter()
        .filter_map(|r| r["tactic"].as_str())
        .filter(|t| t.ends_with(":= by sorry"))
        .count();
    assert!(holes >= 5, "{holes} hole requests");
    let sorry_states: HashSet<u64> = answers
        .iter()
        .filter_map(|a| a["sorries"].as_array())
        .flatten()
        .filter_map(|s| s["proofState"].as_u64())
        .collect();
    let on_sorries: Vec<&str> = requests
        .iter()
        .filter(|r| {
            r["proofState"]
                .as_u64()
                .is_some_and(|s| sorry_states.contains(&s))
        })
        .filter_map(|r| r["tactic"].as_str())
        .collect();
    for tactic in ["positivity", "omega"] {
        assert!(on_sorries.contains(&tactic), "{on_sorries:?}");
    }

    // The records: subgoal counters reach summary.json, and the trajectories carry the
    // subgoal searches with `subgoal_of`.
    let summary = support::read_json(&dir.path().join("dc/summary.json"));
    assert_eq!(summary["proved_by_decomposition"], 2, "{summary}");
    assert_eq!(
        summary["subgoals_opened"].as_u64().unwrap(),
        total(&decomposed, "subgoals_opened")
    );
    let report = std::fs::read_to_string(dir.path().join("dc/report.md")).unwrap();
    assert!(report.contains("| subgoals reused | 1 |"), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_in_a_subgoal_search_costs_no_proof() {
    // Each REPL process answers 6 requests and dies; recycling after 4 tactics replaces
    // workers on purpose too. Every hole state is rebuilt on the fresh process by replaying
    // its parent and sending its `have … := by sorry` again.
    let server = DECOMPOSE_WORLD.sglang(SglangOptions::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let answers = dir.path().join("faults.answers");
    let repl = [
        "--crash-after",
        "6",
        "--log-answers",
        answers.to_str().unwrap(),
    ];
    let args = [
        "--concurrency",
        "1",
        "--set",
        "lean.workers=1",
        "--set",
        "lean.max_requests_per_worker=4",
        "--set",
        "search.expansion=proof",
        "--set",
        "search.decompose=true",
    ];
    ok(DECOMPOSE_WORLD
        .run(dir.path(), "faults", &server.url(), &repl, &args)
        .await);
    let results: BTreeMap<String, Value> = results(&dir.path().join("faults"))
        .into_iter()
        .map(|r| (r["name"].as_str().unwrap().to_owned(), r))
        .collect();
    assert_eq!(proved(&results), ["dc_chain", "dc_plain", "dc_shared"]);
    let holes_sent = support::sweep::tactics_sent(&dir.path().join("faults.log"))
        .into_iter()
        .filter(|t| t == "have h₁ : (a - b) ^ 2 ≥ 0 := by sorry")
        .count();
    assert!(
        holes_sent > 1,
        "the hole was sent again on a fresh worker ({holes_sent})"
    );
    let verdicts = DECOMPOSE_WORLD.verify(dir.path(), &results);
    assert!(
        verdicts.iter().all(|v| v["verified"] == true),
        "{verdicts:?}"
    );
}

//! `[planner]` end to end: the real binary in proof mode with `search.decompose`, the simulated
//! REPL, and the simulated SGLang answering the planner's prompts with sketches
//! (`tests/data/decompose_world.json`: `dc_planned`, whose continuations only ever state a
//! false lemma, has three sketches: a right one, one whose closing step Lean refuses, and
//! another right one), over SGLang's `/generate` and OpenAI's `/v1/chat/completions`.

use crate::support;

use std::collections::BTreeMap;

use formats::trajectory::{read_failed, trajectory_files};
use serde_json::Value;
use sim::sglang::SglangOptions;
use support::sweep::{proved, total, DECOMPOSE_WORLD};

const DECOMPOSE: [&str; 2] = ["--set", "search.decompose=true"];

fn planner_args(url: &str, backend: &str, template: &str) -> Vec<String> {
    [
        format!("planner.urls=[\"{url}\"]"),
        format!("planner.backend=\"{backend}\""),
        format!("planner.template=\"{template}\""),
        "planner.num_sketches=3".into(),
        "planner.max_new_tokens=512".into(),
    ]
    .into_iter()
    .flat_map(|kv| ["--set".to_owned(), kv])
    .chain(DECOMPOSE.map(String::from))
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_planner_s_sketch_proves_what_the_continuations_never_state() {
    let server = DECOMPOSE_WORLD.sglang(SglangOptions::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let url = server.url();
    let alone = DECOMPOSE_WORLD
        .proof_sweep(dir.path(), "alone", &url, &DECOMPOSE)
        .await;
    let args = planner_args(&url, "sglang", "deepseek-v2-sketch");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let planned = DECOMPOSE_WORLD
        .proof_sweep(dir.path(), "planned", &url, &args)
        .await;
    assert_eq!(proved(&alone), ["dc_chain", "dc_plain", "dc_shared"]);
    assert_eq!(
        proved(&planned),
        ["dc_chain", "dc_plain", "dc_planned", "dc_shared"]
    );
    let r = &planned["dc_planned"];
    assert_eq!(r["proved_by_sketch"], 1, "{r}");
    assert_eq!(
        r["proof_tactics"][0], "have h₂ : 2 * x = 12 := by\n  linarith\nlinarith [h₂]",
        "{r}"
    );
    // The planner is asked once per theorem (the root), apart from the policy's calls; its
    // tokens are counted apart too.
    assert_eq!(total(&planned, "planner_calls"), planned.len() as u64);
    assert_eq!(total(&alone, "planner_calls"), 0);
    assert!(total(&planned, "planner_tokens_generated") > 0);
    assert_eq!(r["sketches"], 3);
    assert_eq!(r["sketch_errors"], 1);
    // The sketch with a wrong step is a `sketch_error` row with Lean's message.
    let (_, failed_files) = trajectory_files(&dir.path().join("planned/trajectories")).unwrap();
    let failed = read_failed(&failed_files).unwrap();
    let errors: Vec<_> = failed
        .iter()
        .filter(|f| f.theorem == "dc_planned" && f.outcome == "sketch_error")
        .collect();
    assert_eq!(errors.len(), 1, "{failed:?}");
    assert!(errors[0].tactic.contains("nlinarith [h₂, sq_nonneg x]"));
    assert!(
        errors[0]
            .message
            .contains("tactic 'nlinarith [h₂, sq_nonneg x]' failed"),
        "{}",
        errors[0].message
    );
    // No sketch's sorry reaches a proof: every proof passes `stepwise verify`.
    let verdicts = DECOMPOSE_WORLD.verify(dir.path(), &planned);
    assert_eq!(verdicts.len(), 4);
    assert!(
        verdicts.iter().all(|v| v["verified"] == true),
        "{verdicts:?}"
    );
    for r in planned.values() {
        assert!(!r["proof_tactics"].to_string().contains("sorry"), "{r}");
    }
    // The planner's prompts went over /generate, and the manifest names its template.
    let sketch_requests = server
        .log
        .entries()
        .into_iter()
        .filter(|e| e.path == "/generate" && e.body["text"].to_string().contains("sketch"))
        .count();
    assert_eq!(sketch_requests, planned.len());
    let manifest = support::read_json(&dir.path().join("planned/manifest.json"));
    assert_eq!(
        manifest["planner"]["template"]["name"],
        "deepseek-v2-sketch"
    );
    assert!(
        manifest["planner"]["models"][0]["name"].is_string(),
        "{manifest}"
    );
    let summary = support::read_json(&dir.path().join("planned/summary.json"));
    assert_eq!(summary["proved_by_sketch"], 1, "{summary}");
    let report = std::fs::read_to_string(dir.path().join("planned/report.md")).unwrap();
    assert!(report.contains("| planner calls | 5 |"), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chat_model_plans_over_chat_completions() {
    let server = DECOMPOSE_WORLD.sglang(SglangOptions::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let url = server.url();
    let args = planner_args(&url, "openai-chat", "chat-sketch");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let planned: BTreeMap<String, Value> = DECOMPOSE_WORLD
        .proof_sweep(dir.path(), "chat", &url, &args)
        .await;
    assert_eq!(planned["dc_planned"]["proved"], true);
    let chats: Vec<Value> = server
        .log
        .entries()
        .into_iter()
        .filter(|e| e.path == "/v1/chat/completions")
        .map(|e| e.body)
        .collect();
    assert_eq!(chats.len(), planned.len());
    for body in &chats {
        assert_eq!(body["messages"][0]["role"], "user");
        assert_eq!(body["n"], 3);
        let content = body["messages"][0]["content"].as_str().unwrap();
        assert!(
            content.starts_with("Prove the following Lean 4 theorem"),
            "{content}"
        );
        assert!(!content.contains("<｜User｜>"));
    }
    let verdicts = DECOMPOSE_WORLD.verify(dir.path(), &planned);
    assert!(
        verdicts.iter().all(|v| v["verified"] == true),
        "{verdicts:?}"
    );
}

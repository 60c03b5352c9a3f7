//! The prompt starts with exactly one BOS: `stepwise sweep` asks the simulated SGLang how it
//! tokenized the first prompt (`logprob_start_len: 0`, SGLang's `meta_info.input_token_logprobs`;
//! vLLM's `/tokenize` on the OpenAI backend) and counts the BOS tokens in front, knowing the BOS
//! id from `policy.model_dir`. One passes; none (a tokenizer that adds no BOS) and two (the
//! template writes one and the tokenizer adds another) stop the sweep before any theorem,
//! naming the fix. `doctor_cli` holds doctor's side of the same check.

use crate::support;

use search::policy::http_policy::PROBE_PROMPT;

use std::path::Path;

use serde_json::{json, Value};
use sim::sglang::{SglangHandle, SglangOptions};
use support::sweep::{ok, refused, results, SWEEP_WORLD};

/// The simulated SGLang whose tokenizer adds a BOS or not.
async fn server(add_bos: bool) -> SglangHandle {
    SWEEP_WORLD
        .sglang(SglangOptions {
            add_bos,
            tokenize_route: true,
            ..SglangOptions::default()
        })
        .await
}

/// A one-theorem sweep into `dir/out` with `extra` arguments.
async fn sweep(dir: &Path, out: &str, url: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["--max-theorems", "1"];
    args.extend_from_slice(extra);
    SWEEP_WORLD.run(dir, out, url, &[], &args).await
}

/// The BOS check's requests (the only `/generate` bodies that ask for the prompt's tokens)
/// and the search's own.
fn generate_bodies(server: &SglangHandle) -> (Vec<Value>, Vec<Value>) {
    server
        .log
        .entries()
        .into_iter()
        // Not the start-up's stop_regex probe, which sends a fixed prompt.
        .filter(|e| e.path == "/generate" && e.body["text"] != PROBE_PROMPT)
        .map(|e| e.body)
        .partition(|b| b.get("logprob_start_len").is_some())
}

/// The theorems file's first statement, without `:= by`: what the first root prompt holds.
fn first_statement() -> String {
    let theorems = support::read_jsonl(&support::data(SWEEP_WORLD.theorems));
    let statement = theorems[0]["formal_statement"].as_str().unwrap();
    statement.trim_end().trim_end_matches(":= by").to_owned()
}

fn bos_of_last_run(out: &Path) -> Value {
    let manifest = support::read_json(&out.join("manifest.json"));
    manifest["runs"].as_array().unwrap().last().unwrap()["bos"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_bos_starts_the_sweep_and_none_or_two_stop_it_before_any_theorem() {
    let dir = tempfile::tempdir().unwrap();
    let model = support::deepseek_model_dir();
    let model_dir = format!("policy.model_dir={}", json!(model.path()));

    // One: the tokenizer adds it, the template writes none.
    let adds = server(true).await;
    ok(sweep(dir.path(), "one", &adds.url(), &["--set", &model_dir]).await);
    assert_eq!(bos_of_last_run(&dir.path().join("one")), "one");
    assert_eq!(results(&dir.path().join("one")).len(), 1);
    let (checks, searched) = generate_bodies(&adds);
    assert_eq!(checks.len(), 1, "{checks:?}");
    assert_eq!(checks[0]["return_logprob"], true);
    assert_eq!(checks[0]["logprob_start_len"], 0);
    assert_eq!(checks[0]["return_text_in_logprobs"], true);
    assert_eq!(checks[0]["sampling_params"]["max_new_tokens"], 1);
    // The check sends the first theorem's root prompt, as the search then does.
    let head = first_statement();
    assert!(
        checks[0]["text"].as_str().unwrap().contains(&head),
        "{checks:?}"
    );
    assert!(!searched.is_empty());

    // None: a tokenizer that adds no BOS. Stopped, nothing searched, the fix named.
    let adds_none = server(false).await;
    let stderr = refused(sweep(dir.path(), "none", &adds_none.url(), &["--set", &model_dir]).await);
    assert!(stderr.contains("no BOS"), "{stderr}");
    assert!(stderr.contains("policy.bos = \"template\""), "{stderr}");
    assert!(results(&dir.path().join("none")).is_empty());
    let (checks, searched) = generate_bodies(&adds_none);
    assert_eq!((checks.len(), searched.len()), (1, 0));
    // ... and the fix works: the prompt then starts with the BOS text.
    let template = ["--set", &model_dir, "--set", "policy.bos=template"];
    ok(sweep(dir.path(), "fixed", &adds_none.url(), &template).await);
    assert_eq!(bos_of_last_run(&dir.path().join("fixed")), "one");
    let (_, searched) = generate_bodies(&adds_none);
    let prompt = &searched[0]["text"][0];
    assert!(
        prompt.as_str().unwrap().starts_with(sim::sglang::BOS_TEXT),
        "{prompt}"
    );

    // Two: the template writes it and the tokenizer adds another.
    let stderr = refused(sweep(dir.path(), "two", &adds.url(), &template).await);
    assert!(stderr.contains("two BOS"), "{stderr}");
    assert!(stderr.contains("policy.bos = \"server\""), "{stderr}");
    assert!(results(&dir.path().join("two")).is_empty());
    // The same over vLLM's `/tokenize`.
    let openai = [&template[..], &["--set", "policy.backend=openai"]].concat();
    let stderr = refused(sweep(dir.path(), "two-openai", &adds.url(), &openai).await);
    assert!(stderr.contains("policy.bos = \"server\""), "{stderr}");
    assert!(results(&dir.path().join("two-openai")).is_empty());
    assert!(adds.log.entries().iter().any(|e| e.path == "/tokenize"));
}

/// Without `policy.model_dir` the BOS id is unknown: one BOS in front cannot be told from a
/// text token, so the count is `unchecked` and the sweep goes on, saying why; two equal
/// special tokens in front are still two. SGLang's OpenAI API has no `/tokenize` (404): also
/// unchecked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_model_dir_only_two_is_told() {
    let dir = tempfile::tempdir().unwrap();
    let plain = SWEEP_WORLD.sglang(SglangOptions::default()).await;
    let output = ok(sweep(dir.path(), "sglang", &plain.url(), &[]).await);
    assert_eq!(bos_of_last_run(&dir.path().join("sglang")), "unchecked");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("set policy.model_dir"), "{stderr}");
    let openai = ["--set", "policy.backend=openai"];
    ok(sweep(dir.path(), "openai", &plain.url(), &openai).await);
    assert_eq!(bos_of_last_run(&dir.path().join("openai")), "unchecked");

    let stderr = refused(
        sweep(
            dir.path(),
            "two",
            &plain.url(),
            &["--set", "policy.bos=template"],
        )
        .await,
    );
    assert!(stderr.contains("policy.bos = \"server\""), "{stderr}");
    assert!(results(&dir.path().join("two")).is_empty());
}

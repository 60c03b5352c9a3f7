//! The policy clients over real loopback HTTP against the simulated SGLang server.

use std::sync::Arc;

use formats::join_goals;
use formats::theorems::Theorem;
use search::candidates::{extract_candidates, start_column, tactic_sequence, CandidateSet};
use search::config::{Config, Expansion, PolicyBackend, PolicyConfig, Sampling, SearchConfig};
use search::http_retry::HttpError;
use search::policy::{build_policy, Policy, PolicyError};
use search::request_setup::RequestSetup;
use search::templates::{PromptInput, PromptTemplate};
use serde_json::json;
use sim::sglang::{spawn, SglangHandle, SglangOptions, JUNK_TACTIC};
use sim::world::World;

const HEADER: &str = "import Mathlib\nimport Aesop";

fn world() -> World {
    serde_json::from_value(json!({
        "theorems": [{
            "name": "t1",
            "formal_statement": "theorem t1 (x : ℕ) (h₀ : x = 2) : x + x = 4 := by",
            "root": ["x : ℕ\nh₀ : x = 2\n⊢ x + x = 4"],
            "states": [
                {"goals": ["x : ℕ\nh₀ : x = 2\n⊢ x + x = 4"], "tactics": [
                    {"tactic": "subst h₀", "logprob": -0.5, "effect": {"goals": ["⊢ 2 + 2 = 4"]}},
                    {"tactic": "sorry", "logprob": -0.1, "effect": {"goals": []}},
                    {"tactic": "omega", "logprob": -1.5,
                     "completion": "```lean4\n  omega -- linear arithmetic\n  simp\n```", "effect": {"goals": []}}
                ]},
                {"goals": ["⊢ 2 + 2 = 4"], "tactics": [
                    {"tactic": "norm_num", "logprob": -0.2, "effect": {"goals": []}},
                    {"tactic": "rfl", "logprob": -0.9, "effect": {"goals": []}}
                ]}
            ]
        }]
    }))
    .unwrap()
}

fn theorem() -> Theorem {
    Theorem {
        name: "t1".into(),
        formal_statement: world().theorems[0].formal_statement.clone(),
        header: None,
        extra: Default::default(),
    }
}

/// Deepseek-template prompts for the root and the state after `subst h₀`.
fn prompts() -> Vec<String> {
    let t = theorem();
    let template = PromptTemplate::from_config("deepseek-tactic-state").unwrap();
    let root = join_goals(&["x : ℕ\nh₀ : x = 2\n⊢ x + x = 4".to_owned()]);
    let after = ["subst h₀".to_owned()];
    vec![
        template.render(&PromptInput::new(&t, HEADER, &[], &root)),
        template.render(&PromptInput::new(&t, HEADER, &after, "⊢ 2 + 2 = 4")),
    ]
}

fn config(urls: Vec<String>, backend: PolicyBackend, sampling: Sampling) -> PolicyConfig {
    PolicyConfig {
        backend,
        urls,
        sampling,
        max_retries: 3,
        request_timeout: 10.0,
        // No stops: these tests read whole scripted completions (fences included).
        stop: Some(Vec::new()),
        stop_regex: Some(Vec::new()),
        // A refused port is down at once, not waited for as a server still loading.
        startup_timeout: 0.0,
        // Named, so the request logs hold only generate calls (no `/v1/models` look-up).
        model: Some("default".into()),
        ..PolicyConfig::default()
    }
}

/// The client a sweep with this `[policy]` builds, in tactic mode.
fn client(policy: &PolicyConfig) -> Arc<dyn Policy> {
    client_for(policy, Expansion::Tactic)
}

/// The client a sweep with this `[policy]` builds under `search.expansion = "proof"`.
fn proof_client(policy: &PolicyConfig) -> Arc<dyn Policy> {
    client_for(policy, Expansion::Proof)
}

fn client_for(policy: &PolicyConfig, expansion: Expansion) -> Arc<dyn Policy> {
    let config = Config {
        policy: policy.clone(),
        search: SearchConfig {
            expansion,
            ..SearchConfig::default()
        },
        ..Config::default()
    };
    build_policy(policy, &RequestSetup::from_config(&config).unwrap()).unwrap()
}

async fn sim(options: SglangOptions) -> SglangHandle {
    spawn(world(), options).await.unwrap()
}

async fn candidates(policy: &Arc<dyn Policy>, prompts: &[String], n: usize) -> Vec<CandidateSet> {
    let banned = vec!["sorry".to_owned(), "admit".to_owned()];
    let completions = policy.generate(prompts, n).await.unwrap();
    assert_eq!(completions.len(), prompts.len());
    completions
        .iter()
        .zip(prompts)
        .map(|(c, p)| {
            assert_eq!(c.len(), n);
            extract_candidates(c, &banned, start_column(p))
        })
        .collect()
}

/// A port nothing listens on.
async fn closed_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

#[tokio::test]
async fn repeat_n_and_openai_give_the_same_candidates() {
    let server = sim(SglangOptions::default()).await;
    let prompts = prompts();
    let mut results = Vec::new();
    for (backend, sampling) in [
        (PolicyBackend::Sglang, Sampling::Repeat),
        (PolicyBackend::Sglang, Sampling::N),
        (PolicyBackend::Openai, Sampling::Repeat),
        (PolicyBackend::Openai, Sampling::N),
    ] {
        let policy = client(&config(vec![server.url()], backend, sampling));
        results.push(candidates(&policy, &prompts, 5).await);
    }
    for other in &results[1..] {
        assert_eq!(other, &results[0]);
    }
    let root = &results[0][0];
    // 5 samples over [sorry, subst, omega] ranked by log-prob: sorry x2, subst x2, omega.
    assert_eq!(
        (root.generated, root.banned_count, root.empty_count),
        (5, 2, 0)
    );
    let tactics: Vec<&str> = root.candidates.iter().map(|c| c.tactic.as_str()).collect();
    assert_eq!(tactics, ["subst h₀", "omega"]);
    assert_eq!(root.candidates[0].count, 2);
    // The fence, the comment and the second tactic are cut; the log-prob covers the tokens
    // up to the tactic's end, never more than the whole completion.
    assert!(root.candidates[1].logprob < 0.0 && root.candidates[1].logprob > -1.5);
    let second: Vec<&str> = results[0][1]
        .candidates
        .iter()
        .map(|c| c.tactic.as_str())
        .collect();
    assert_eq!(second, ["norm_num", "rfl"]);

    // Repeat mode repeats each prompt n times; n mode sends it once with n.
    let log = server.log.entries();
    assert_eq!(log[0].body["text"].as_array().unwrap().len(), 10);
    assert_eq!(log[0].body["return_logprob"], json!(true));
    assert_eq!(log[0].body["sampling_params"]["temperature"], json!(1.3));
    assert_eq!(log[1].body["text"].as_array().unwrap().len(), 2);
    assert_eq!(log[1].body["sampling_params"]["n"], json!(5));
    assert_eq!(log[2].path, "/v1/completions");
    assert_eq!(log[2].body["logprobs"], json!(1));
}

#[tokio::test]
async fn one_prompt_with_n_1_is_a_bare_object() {
    let server = sim(SglangOptions::default()).await;
    let policy = client(&config(
        vec![server.url()],
        PolicyBackend::Sglang,
        Sampling::Repeat,
    ));
    let prompts = vec![prompts()[1].clone()];
    let out = policy.generate(&prompts, 1).await.unwrap();
    // The prompt ends at a line start in the proof: the model writes the indentation; with no
    // stop string it goes on to the end of the proof, which `norm_num` is, and closes the
    // fence as DeepSeek-Prover does.
    assert_eq!(out[0][0].text, "  norm_num\n```");
    assert_eq!(out[0][0].finish_reason, "stop");
    let total: f64 = out[0][0].tokens.iter().map(|t| t.logprob).sum();
    assert!((total + 0.2).abs() < 1e-9);
    assert!(out[0][0].tokens.iter().all(|t| t.text.is_some()));
    let log = server.log.entries();
    assert_eq!(log[0].body["text"], json!(prompts[0]));
}

/// The simulated model writes the whole proof after the sampled tactic, as DeepSeek-Prover
/// does: a tactic template's stops (`"\n\n"` and the rest) do not cut between tactics, so
/// tactic mode pays for the rest in tokens but still reads the first tactic's own log-prob;
/// with the proof template's fence stop the continuation splits into each tactic's log-prob.
#[tokio::test]
async fn the_model_writes_the_rest_of_the_proof_and_each_tactic_keeps_its_logprob() {
    let server = sim(SglangOptions::default()).await;
    let root = vec![prompts()[0].clone()];
    let mut c = config(vec![server.url()], PolicyBackend::Sglang, Sampling::N);
    c.stop = None;
    let tactic = client(&c);
    let out = tactic.generate(&root, 2).await.unwrap();
    // Sample 0 is `sorry` (most likely), sample 1 `subst h₀`, then the rest of the proof.
    assert_eq!(out[0][1].text, "  subst h₀\n  norm_num\n");
    assert_eq!(out[0][1].finish_reason, "stop");
    // The template's stop regex ends it a token into the next tactic, as SGLang does.
    c.stop_regex = None;
    let regex_stopped = client(&c);
    let cut = regex_stopped.generate(&root, 2).await.unwrap();
    assert_eq!(cut[0][1].text, "  subst h₀\n  no");
    assert_eq!(cut[0][1].finish_reason, search::policy::STOP_REGEX);
    assert!(cut[0][1].completion_tokens < out[0][1].completion_tokens);
    assert_eq!(
        extract_candidates(&cut[0], &[], start_column(&root[0])).candidates,
        extract_candidates(&out[0], &[], start_column(&root[0])).candidates
    );
    let set = extract_candidates(&out[0], &[], start_column(&root[0]));
    let subst = set
        .candidates
        .iter()
        .find(|c| c.tactic == "subst h₀")
        .unwrap();
    assert!((subst.logprob + 0.5).abs() < 1e-12, "{}", subst.logprob);

    let proof = proof_client(&c);
    let out = proof.generate(&root, 2).await.unwrap();
    assert_eq!(out[0][1].text, "  subst h₀\n  norm_num\n");
    let steps = tactic_sequence(&out[0][1], start_column(&root[0]));
    let steps: Vec<(&str, f64)> = steps
        .iter()
        .map(|s| (s.tactic.as_str(), s.logprob))
        .collect();
    assert_eq!(steps.len(), 2, "{steps:?}");
    assert_eq!((steps[0].0, steps[1].0), ("subst h₀", "norm_num"));
    assert!((steps[0].1 + 0.5).abs() < 1e-12 && (steps[1].1 + 0.2).abs() < 1e-12);
    // A small `proof_max_new_tokens` cuts the continuation: the cut tactic is not read.
    c.proof_max_new_tokens = 4;
    let short = proof_client(&c);
    let out = short.generate(&root, 2).await.unwrap();
    assert_eq!(out[0][1].finish_reason, "length");
    let steps = tactic_sequence(&out[0][1], start_column(&root[0]));
    assert_eq!(steps.len(), 1, "{steps:?}");
    // The OpenAI route counts the prompt's tokens too (once per prompt, as vLLM does), so
    // `tokens_prompt` is not zero on that backend.
    let mut o = config(vec![server.url()], PolicyBackend::Openai, Sampling::N);
    o.stop = None;
    let openai = client(&o).generate(&root, 2).await.unwrap();
    let sglang_prompt = out[0][0].prompt_tokens;
    assert!(sglang_prompt > 0);
    assert_eq!(
        openai[0].iter().map(|c| c.prompt_tokens).sum::<u32>(),
        sglang_prompt
    );
    let log = server.log.entries();
    assert_eq!(
        log[0].body["sampling_params"]["stop"],
        json!(["```", "\n\n", "/- tactic state:"])
    );
    assert_eq!(
        log[1].body["sampling_params"]["stop_regex"],
        json!([search::templates::DEEPSEEK_TACTIC_END])
    );
    assert_eq!(log[2].body["sampling_params"]["stop"], json!(["```"]));
    assert_eq!(log[2].body["sampling_params"].get("stop_regex"), None);
}

#[tokio::test]
async fn unknown_states_get_a_junk_tactic() {
    let server = sim(SglangOptions::default()).await;
    let policy = client(&config(
        vec![server.url()],
        PolicyBackend::Sglang,
        Sampling::N,
    ));
    let out = policy.generate(&["⊢ False".to_owned()], 2).await.unwrap();
    assert!(out[0].iter().all(|c| c.text.starts_with(JUNK_TACTIC)));
}

#[tokio::test]
async fn every_third_request_failing_with_503_still_succeeds() {
    let server = sim(SglangOptions {
        fail_every: Some(3),
        ..SglangOptions::default()
    })
    .await;
    for backend in [PolicyBackend::Sglang, PolicyBackend::Openai] {
        let policy = client(&config(vec![server.url()], backend, Sampling::Repeat));
        for _ in 0..3 {
            let out = candidates(&policy, &prompts(), 2).await;
            assert_eq!(out[1].candidates[0].tactic, "norm_num");
        }
    }
    let statuses: Vec<u16> = server.log.entries().iter().map(|e| e.status).collect();
    assert!(statuses.contains(&503), "{statuses:?}");
    assert_eq!(statuses.iter().filter(|&&s| s == 200).count(), 6);
}

#[tokio::test]
async fn a_400_fails_fast_with_the_server_message() {
    let server = sim(SglangOptions::default()).await;
    for backend in [PolicyBackend::Sglang, PolicyBackend::Openai] {
        let mut c = config(vec![server.url()], backend, Sampling::Repeat);
        c.top_p = 1.5;
        let policy = client(&c);
        let before = server.log.entries().len();
        match policy.generate(&prompts(), 2).await {
            Err(PolicyError::Server(HttpError::Rejected {
                status,
                message,
                url,
            })) => {
                assert_eq!(status, 400);
                assert!(message.contains("top_p must be in (0, 1]"), "{message}");
                assert!(url.starts_with(&server.url()), "{url}");
            }
            other => panic!("expected a rejection, got {other:?}"),
        }
        assert_eq!(server.log.entries().len(), before + 1, "no retry on 400");
    }
}

#[tokio::test]
async fn health_check_names_the_down_url() {
    let server = sim(SglangOptions::default()).await;
    let down = closed_url().await;
    let policy = client(&config(
        vec![server.url(), down.clone()],
        PolicyBackend::Sglang,
        Sampling::Repeat,
    ));
    let err = policy.health_check().await.unwrap_err();
    match &err {
        PolicyError::Down { down: list } => {
            assert_eq!(list.len(), 1);
            assert_eq!(list[0].0, down);
        }
        other => panic!("expected Down, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.contains(&down) && !msg.contains(&server.url()), "{msg}");
    let healthy = client(&config(
        vec![server.url()],
        PolicyBackend::Openai,
        Sampling::N,
    ));
    healthy.health_check().await.unwrap();
}

#[tokio::test]
async fn requests_are_spread_over_urls_and_skip_a_dead_one() {
    let (a, b) = (
        sim(SglangOptions::default()).await,
        sim(SglangOptions::default()).await,
    );
    let policy = client(&config(
        vec![a.url(), b.url()],
        PolicyBackend::Sglang,
        Sampling::N,
    ));
    for _ in 0..4 {
        policy.generate(&prompts(), 1).await.unwrap();
    }
    assert_eq!((a.log.entries().len(), b.log.entries().len()), (2, 2));

    let mut c = config(
        vec![closed_url().await, a.url()],
        PolicyBackend::Sglang,
        Sampling::N,
    );
    c.max_retries = 0;
    let policy = client(&c);
    for _ in 0..3 {
        policy.generate(&prompts(), 1).await.unwrap();
    }
    assert_eq!(a.log.entries().len(), 2 + 3);
}

#[tokio::test]
async fn all_urls_down_is_unavailable() {
    let mut c = config(vec![closed_url().await], PolicyBackend::Sglang, Sampling::N);
    c.max_retries = 1;
    let policy = client(&c);
    match policy.generate(&prompts(), 1).await {
        Err(PolicyError::Server(HttpError::Unavailable { attempts, .. })) => {
            assert_eq!(attempts, 2)
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn model_info_answers() {
    let server = sim(SglangOptions::default()).await;
    let info: serde_json::Value = reqwest::get(format!("{}/get_model_info", server.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["is_generation"], json!(true));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_simulator_finds_the_state_in_every_built_in_template() {
    let server = sim(SglangOptions::default()).await;
    let policy = client(&config(
        vec![server.url()],
        PolicyBackend::Sglang,
        Sampling::N,
    ));
    let t = theorem();
    let after = ["subst h₀".to_owned()];
    for built_in in search::templates::BUILT_IN {
        let name = built_in.name;
        let template = PromptTemplate::from_config(name).unwrap();
        let prompt = template.render(&PromptInput::new(&t, HEADER, &after, "⊢ 2 + 2 = 4"));
        let out = candidates(&policy, &[prompt], 2).await;
        let tactics: Vec<&str> = out[0]
            .candidates
            .iter()
            .map(|c| c.tactic.as_str())
            .collect();
        assert_eq!(tactics, ["norm_num", "rfl"], "template {name}");
    }
}

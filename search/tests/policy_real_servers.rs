//! The policy clients against what real SGLang and vLLM servers do (each test names the
//! server source it follows), over loopback HTTP to the simulated server.

use std::sync::Arc;
use std::time::Duration;

use search::candidates::{extract_candidates, start_column};
use search::config::{Config, PolicyBackend, PolicyConfig, Sampling};
use search::http_retry::HttpError;
use search::policy::{build_policy, Policy, PolicyError};
use search::request_setup::RequestSetup;
use serde_json::json;
use sim::sglang::{spawn, SglangHandle, SglangOptions};
use sim::world::World;

const STATE: &str = "x : ℕ\nh₀ : x = 2\n⊢ x + x = 4";

fn world() -> World {
    serde_json::from_value(json!({
        "theorems": [{
            "name": "t1",
            "formal_statement": "theorem t1 (x : ℕ) (h₀ : x = 2) : x + x = 4 := by",
            "root": [STATE],
            "states": [{"goals": [STATE], "tactics": [
                {"tactic": "subst h₀", "logprob": -0.5, "effect": {"goals": ["⊢ 2 + 2 = 4"]}},
                {"tactic": "omega", "logprob": -1.5, "completion": "omega\n  /- tactic state:\n  no goals -/",
                 "effect": {"goals": []}}
            ]}]
        }]
    }))
    .unwrap()
}

async fn sim(options: SglangOptions) -> SglangHandle {
    spawn(world(), options).await.unwrap()
}

fn config(url: String, backend: PolicyBackend) -> PolicyConfig {
    PolicyConfig {
        backend,
        urls: vec![url],
        sampling: Sampling::Repeat,
        max_retries: 2,
        request_timeout: 10.0,
        startup_timeout: 0.0,
        ..PolicyConfig::default()
    }
}

/// The client a sweep with this `[policy]` builds (tactic mode).
fn policy(config: &PolicyConfig) -> Arc<dyn Policy> {
    let whole = Config {
        policy: config.clone(),
        ..Config::default()
    };
    build_policy(config, &RequestSetup::from_config(&whole).unwrap()).unwrap()
}

const BOTH: [PolicyBackend; 2] = [PolicyBackend::Sglang, PolicyBackend::Openai];

/// vLLM answers 404 "The model `default` does not exist." to a name it does not serve
/// (`serving_engine.py` `_check_model`); with `policy.model` unset the id comes from
/// `GET /v1/models` (`show_available_models`), asked once.
#[tokio::test]
async fn openai_with_model_unset_sends_the_served_id_to_a_server_enforcing_names() {
    let server = sim(SglangOptions {
        enforce_model: true,
        model: "deepseek-ai/DeepSeek-Prover-V2-7B".into(),
        ..SglangOptions::default()
    })
    .await;
    let p = policy(&config(server.url(), PolicyBackend::Openai));
    p.health_check().await.unwrap();
    for _ in 0..2 {
        let out = p.generate(&[STATE.to_owned()], 2).await.unwrap();
        assert_eq!(out[0].len(), 2);
    }
    let log = server.log.entries();
    let completions: Vec<_> = log.iter().filter(|e| e.path == "/v1/completions").collect();
    assert_eq!(completions.len(), 2);
    assert!(completions.iter().all(|e| e.status == 200));
    assert_eq!(
        completions[0].body["model"],
        json!("deepseek-ai/DeepSeek-Prover-V2-7B")
    );
    assert_eq!(log.iter().filter(|e| e.path == "/v1/models").count(), 1);

    // A name the server does not serve is its 404, with vLLM's words.
    let mut named = config(server.url(), PolicyBackend::Openai);
    named.model = Some("default".into());
    match policy(&named).generate(&[STATE.to_owned()], 1).await {
        Err(PolicyError::Server(HttpError::Rejected {
            status, message, ..
        })) => {
            assert_eq!(status, 404);
            assert_eq!(message, "The model `default` does not exist.");
        }
        other => panic!("expected the 404, got {other:?}"),
    }
}

/// SGLang's 400 "The input (N tokens) is longer than the model's context length (M tokens)."
/// (`tokenizer_manager.py` `_validate_one_request`) for one prompt of a batch costs that
/// prompt's node its candidates, not the batch.
#[tokio::test]
async fn a_prompt_over_the_context_gets_no_candidates_and_the_batch_goes_on() {
    let server = sim(SglangOptions {
        context_tokens: Some(400),
        ..SglangOptions::default()
    })
    .await;
    let long = format!("{}\n{STATE}", "-- filler line\n".repeat(200));
    let prompts = vec![STATE.to_owned(), long];
    for backend in BOTH {
        let mut c = config(server.url(), backend);
        c.max_new_tokens = 64;
        let out = policy(&c).generate(&prompts, 3).await.unwrap();
        assert_eq!(out[0].len(), 3, "{backend:?}");
        assert!(out[1].is_empty(), "{backend:?}");
    }
    let rejected = server
        .log
        .entries()
        .into_iter()
        .filter(|e| e.status == 400)
        .count();
    assert_eq!(rejected, 4, "batch then the long prompt alone, per backend");
}

/// The context comes from the server (`/v1/models` `max_model_len`), so prompts are bounded
/// before they are sent; `policy.context_tokens` overrides it.
#[tokio::test]
async fn the_prompt_budget_is_the_servers_context_less_the_completion() {
    let server = sim(SglangOptions {
        context_tokens: Some(4096),
        ..SglangOptions::default()
    })
    .await;
    for backend in BOTH {
        let p = policy(&config(server.url(), backend));
        assert_eq!(p.prompt_budget(), None, "unknown before the start check");
        p.health_check().await.unwrap();
        assert_eq!(p.prompt_budget(), Some(4096 - 128 - 1));
        let mut c = config(server.url(), backend);
        c.context_tokens = Some(1000);
        assert_eq!(policy(&c).prompt_budget(), Some(1000 - 128 - 1));
    }
}

/// SGLang answers 503 on `/health` while it loads (`http_server.py`, `ServerStatus.Starting`)
/// and refuses connections before it binds: both are waited for at start.
#[tokio::test]
async fn a_server_still_loading_is_waited_for_at_start() {
    let server = sim(SglangOptions {
        loading_requests: 3,
        ..SglangOptions::default()
    })
    .await;
    let mut c = config(server.url(), PolicyBackend::Sglang);
    c.startup_timeout = 60.0;
    policy(&c).health_check().await.unwrap();
    let statuses: Vec<u16> = server.log.entries().iter().map(|e| e.status).collect();
    assert_eq!(&statuses[..4], [503, 503, 503, 200]);

    // No wait allowed: the 503 is named.
    let loading = sim(SglangOptions {
        loading_requests: 1000,
        ..SglangOptions::default()
    })
    .await;
    let err = policy(&config(loading.url(), PolicyBackend::Sglang))
        .health_check()
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("503") && msg.contains("startup_timeout"),
        "{msg}"
    );

    // A port that only starts listening later.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let late = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(700)).await;
        spawn(
            world(),
            SglangOptions {
                addr,
                ..SglangOptions::default()
            },
        )
        .await
        .unwrap()
    });
    let mut c = config(format!("http://{addr}"), PolicyBackend::Sglang);
    c.startup_timeout = 60.0;
    policy(&c).health_check().await.unwrap();
    drop(late.await.unwrap());
}

/// `finish_reason` `abort` (SGLang `FINISH_ABORT`, `schedule_batch.py`) is a cut-off: the
/// text is a fragment, so no candidate comes from it.
#[tokio::test]
async fn aborted_completions_give_no_candidates() {
    let server = sim(SglangOptions {
        abort_every: Some(1),
        ..SglangOptions::default()
    })
    .await;
    for backend in BOTH {
        let out = policy(&config(server.url(), backend))
            .generate(&[STATE.to_owned()], 4)
            .await
            .unwrap();
        assert!(out[0].iter().all(|c| c.finish_reason == "abort"));
        let set = extract_candidates(&out[0], &[], start_column(STATE));
        assert_eq!(set.empty_count, 4, "{backend:?}: {:?}", set.candidates);
    }
}

/// orjson writes a NaN log-prob as `null` (SGLang `http_server.py`): tolerated, finite.
#[tokio::test]
async fn a_null_logprob_does_not_fail_the_batch() {
    let server = sim(SglangOptions {
        null_logprobs: true,
        ..SglangOptions::default()
    })
    .await;
    for backend in BOTH {
        let out = policy(&config(server.url(), backend))
            .generate(&[STATE.to_owned()], 2)
            .await
            .unwrap();
        let set = extract_candidates(&out[0], &[], start_column(STATE));
        assert_eq!(set.candidates.len(), 2, "{backend:?}");
        assert!(set.candidates.iter().all(|c| c.logprob.is_finite()));
    }
}

/// Single-token texts of byte-level tokens (`detokenize_logprob_tokens`) need not spell the
/// completion: `₀` split between tokens reads U+FFFD. The tactic and a log-prob still come out.
#[tokio::test]
async fn token_texts_with_replacement_characters_still_give_the_tactic() {
    let server = sim(SglangOptions {
        byte_tokens: true,
        ..SglangOptions::default()
    })
    .await;
    let out = policy(&config(server.url(), PolicyBackend::Sglang))
        .generate(&[STATE.to_owned()], 1)
        .await
        .unwrap();
    let texts: String = out[0][0]
        .tokens
        .iter()
        .map(|t| t.text.clone().unwrap())
        .collect();
    assert!(texts.contains('\u{fffd}'), "{texts}");
    assert_eq!(out[0][0].text, "subst h₀\n");
    let set = extract_candidates(&out[0], &[], start_column(STATE));
    assert_eq!(set.candidates[0].tactic, "subst h₀");
    assert!(set.candidates[0].logprob < 0.0 && set.candidates[0].logprob >= -0.5);
}

/// Each built-in template's stop strings and regexes go out with the request unless
/// `policy.stop` / `policy.stop_regex` are set, and the server applies them (SGLang trims a
/// matched string, keeps a regex's match).
#[tokio::test]
async fn the_templates_stop_strings_are_sent_and_applied() {
    let server = sim(SglangOptions::default()).await;
    let p = policy(&config(server.url(), PolicyBackend::Sglang));
    let out = p.generate(&[STATE.to_owned()], 2).await.unwrap();
    // The next line is the state comment at the proof's column: the regex never stops before
    // a comment line (a first line may be one), so the comment's stop string ends the sample
    // and SGLang trims it.
    assert_eq!(out[0][1].text, "omega\n  ");
    assert_ne!(out[0][1].finish_reason, search::policy::STOP_REGEX);
    let set = extract_candidates(&out[0], &[], start_column(STATE));
    assert!(set.candidates.iter().any(|c| c.tactic == "omega"));
    let log = server.log.entries();
    assert_eq!(
        log[0].body["sampling_params"]["stop"],
        json!(["```", "\n\n", "/- tactic state:"])
    );
    assert_eq!(
        log[0].body["sampling_params"]["stop_regex"],
        json!([search::templates::DEEPSEEK_TACTIC_END])
    );
    let mut c = config(server.url(), PolicyBackend::Sglang);
    c.stop_regex = Some(Vec::new());
    let out = policy(&c).generate(&[STATE.to_owned()], 2).await.unwrap();
    assert_eq!(out[0][1].text, "omega\n  ");
    let mut c = config(server.url(), PolicyBackend::Openai);
    c.stop = Some(vec!["\n".into()]);
    c.template = "internlm-step-prover".into();
    policy(&c).generate(&[STATE.to_owned()], 1).await.unwrap();
    let sent = server.log.entries();
    let openai = sent.iter().find(|e| e.path == "/v1/completions").unwrap();
    assert_eq!(openai.body["stop"], json!(["\n"]));
}

/// reqwest is built with rustls: an `https://` URL reaches TLS (here a plain-HTTP server, so
/// the handshake fails) instead of being refused as an unsupported scheme.
#[tokio::test]
async fn https_urls_speak_tls() {
    let server = sim(SglangOptions::default()).await;
    let mut c = config(
        server.url().replace("http://", "https://"),
        PolicyBackend::Sglang,
    );
    c.max_retries = 0;
    let err = policy(&c)
        .generate(&[STATE.to_owned()], 1)
        .await
        .unwrap_err()
        .to_string();
    assert!(!err.contains("scheme"), "{err}");
    // rustls reading an HTTP answer as a TLS record.
    assert!(err.contains("InvalidContentType"), "{err}");
}

/// SGLang's uvicorn closes a connection idle for 5 s (`SGLANG_TIMEOUT_KEEP_ALIVE`,
/// `http_server.py`); the client drops pooled connections sooner, so after a longer pause it
/// opens a new one instead of sending on one the server is closing.
#[tokio::test]
async fn pooled_connections_are_dropped_before_sglangs_keep_alive_ends() {
    let server = sim(SglangOptions::default()).await;
    let p = policy(&config(server.url(), PolicyBackend::Sglang));
    p.generate(&[STATE.to_owned()], 1).await.unwrap();
    p.generate(&[STATE.to_owned()], 1).await.unwrap();
    let reused = server.connections.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(reused, 1, "back-to-back requests share one connection");
    // Longer than the client's idle limit, shorter than the server's 5 s.
    tokio::time::sleep(Duration::from_millis(4500)).await;
    p.generate(&[STATE.to_owned()], 1).await.unwrap();
    assert_eq!(
        server.connections.load(std::sync::atomic::Ordering::SeqCst),
        2
    );
}

/// The start-up BOS check's view of a prompt: SGLang answers `logprob_start_len: 0` with the
/// prompt's own tokens in `meta_info.input_token_logprobs`, the first log-prob `null`
/// (`scheduler_output_processor_mixin.py` `_process_input_token_logprobs`); vLLM's
/// `/tokenize` gives the same ids. One BOS, none (a tokenizer that adds none) and two (the
/// prompt's BOS text and the tokenizer's) are told apart with the BOS id; without it only two.
#[tokio::test]
async fn the_bos_check_counts_what_the_server_put_before_the_prompt() {
    use formats::tokenizer_config::BosToken;
    use search::bos::BosCount;
    use search::policy::check_bos;
    use sim::sglang::{BOS_ID, BOS_TEXT};

    let bos = BosToken {
        id: BOS_ID as u32,
        text: Some(BOS_TEXT.into()),
    };
    let with_text = format!("{BOS_TEXT}{STATE}");
    for (add_bos, prompt, want) in [
        (true, STATE, BosCount::One),
        (false, STATE, BosCount::None),
        (true, with_text.as_str(), BosCount::Two),
    ] {
        let server = sim(SglangOptions {
            add_bos,
            tokenize_route: true,
            ..SglangOptions::default()
        })
        .await;
        for backend in BOTH {
            let p = policy(&config(server.url(), backend));
            let check = check_bos(&*p, prompt, Some(&bos)).await.unwrap();
            assert_eq!(
                check.count, want,
                "{backend:?}, add_bos {add_bos}: {check:?}"
            );
            let tokens = p.prompt_tokens(prompt).await.unwrap().unwrap();
            let texts: String = tokens.iter().map(|t| t.text.clone().unwrap()).collect();
            assert!(texts.ends_with(STATE), "{backend:?}: {tokens:?}");
        }
        let p = policy(&config(server.url(), PolicyBackend::Sglang));
        let blind = check_bos(&*p, prompt, None).await.unwrap().count;
        let told = if want == BosCount::Two {
            BosCount::Two
        } else {
            BosCount::Unchecked
        };
        assert_eq!(blind, told, "add_bos {add_bos}");
    }
    // SGLang's OpenAI API has no `/tokenize`: its 404 leaves the count unknown.
    let server = sim(SglangOptions::default()).await;
    let p = policy(&config(server.url(), PolicyBackend::Openai));
    assert_eq!(p.prompt_tokens(STATE).await.unwrap(), None);
    let check = check_bos(&*p, STATE, Some(&bos)).await.unwrap();
    assert_eq!(check.count, BosCount::Unchecked);
}

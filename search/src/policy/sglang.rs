//! SGLang's native `POST /generate`.
//!
//! Facts this client relies on (SGLang `io_struct.py` / `tokenizer_manager.py`): `text` as a
//! string with `n = 1` answers one bare object, anything else a list in input order, with
//! the `n` samples of a prompt adjacent (p0s0..p0s(n-1), p1s0, ...); with
//! `return_logprob` every `meta_info.output_token_logprobs` entry is
//! `[logprob, token_id, text]`, the text `null` unless `return_text_in_logprobs`;
//! `finish_reason` is `{"type": "stop" | "length" | "abort", ...}` or `null`.

use serde::Serialize;
use serde_json::Value;

use super::http_policy::{HttpPolicy, Request, SamplingSettings, WireFormat};
use super::{Completion, STOP_REGEX};
use crate::bos::PromptToken;
use crate::config::Sampling;

/// SGLang's native API.
pub struct SglangGenerate;

/// The policy client of SGLang's `/generate`.
pub type SglangPolicy = HttpPolicy<SglangGenerate>;

impl WireFormat for SglangGenerate {
    const PATH: &'static str = "/generate";
    const NAMES_MODEL: bool = false;
    const STOP_REGEX: bool = true;

    const TOKENIZE_PATH: &'static str = "/generate";

    /// One token generated for `prompt` with the log-probs of the prompt's own tokens from
    /// the first (`logprob_start_len: 0`; its default -1 returns the output's alone,
    /// `io_struct.py` `GenerateReqInput`). Those come back as `meta_info.input_token_logprobs`,
    /// one `[logprob, token_id, text]` per prompt token as the server tokenized it, BOS
    /// included; the first entry's log-prob is `null`, the first token having no context
    /// (`scheduler_output_processor_mixin.py` `_process_input_token_logprobs`).
    fn tokenize_body<'a>(
        prompt: &'a str,
        _model: Option<&'a str>,
    ) -> impl Serialize + Send + Sync + 'a {
        serde_json::json!({
            "text": prompt,
            "sampling_params": {"max_new_tokens": 1},
            "return_logprob": true,
            "logprob_start_len": 0,
            "return_text_in_logprobs": true,
        })
    }

    fn parse_tokens(answer: Value) -> Result<Vec<PromptToken>, String> {
        let entries = answer
            .pointer("/meta_info/input_token_logprobs")
            .and_then(Value::as_array)
            .ok_or("an answer without `meta_info.input_token_logprobs`")?;
        entries
            .iter()
            .map(|entry| {
                let (_, id, text) = parse_token(entry)?;
                let id = id.ok_or_else(|| format!("an input token without an id: {entry}"))?;
                Ok(PromptToken { id, text })
            })
            .collect()
    }

    fn body<'a>(request: &'a Request<'a>) -> impl Serialize + Send + Sync + 'a {
        let settings = request.settings;
        // Sent with `sampling = "n"` even when it is 1, so the server is told, not assumed.
        let n = (settings.sampling == Sampling::N).then_some(request.samples_per_text);
        let text = match request.texts.as_slice() {
            [one] if request.samples_per_text == 1 => Text::One(one),
            texts => Text::Many(texts),
        };
        GenerateRequest {
            text,
            sampling_params: SamplingParams {
                temperature: settings.temperature,
                top_p: settings.top_p,
                max_new_tokens: settings.max_new_tokens,
                stop: &settings.stop,
                stop_regex: &settings.stop_regex,
                n,
            },
            return_logprob: true,
            return_text_in_logprobs: true,
        }
    }

    fn parse(
        answer: Value,
        expected: usize,
        settings: &SamplingSettings,
    ) -> Result<Vec<Completion>, String> {
        parse_generate_response(answer, expected, &settings.stop_regex)
    }
}

/// One prompt with one sample goes as a string, so SGLang answers one bare object.
#[derive(Serialize)]
#[serde(untagged)]
enum Text<'a> {
    One(&'a str),
    Many(&'a [&'a str]),
}

#[derive(Serialize)]
struct GenerateRequest<'a> {
    text: Text<'a>,
    sampling_params: SamplingParams<'a>,
    return_logprob: bool,
    return_text_in_logprobs: bool,
}

#[derive(Serialize)]
struct SamplingParams<'a> {
    temperature: f64,
    top_p: f64,
    max_new_tokens: u32,
    stop: &'a [String],
    /// Omitted when empty, so a server without it is not sent the field.
    #[serde(skip_serializing_if = "no_patterns")]
    stop_regex: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    n: Option<usize>,
}

fn no_patterns(patterns: &&[String]) -> bool {
    patterns.is_empty()
}

/// The flat completions of a `/generate` answer to a request that sent `stop_regex`, checked
/// to number `expected`.
pub fn parse_generate_response(
    answer: Value,
    expected: usize,
    stop_regex: &[String],
) -> Result<Vec<Completion>, String> {
    let items = match answer {
        Value::Array(items) => items,
        object @ Value::Object(_) => vec![object],
        other => return Err(format!("expected an object or a list, got {other}")),
    };
    if items.len() != expected {
        return Err(format!(
            "expected {expected} completions, got {}",
            items.len()
        ));
    }
    items
        .iter()
        .map(|item| parse_item(item, stop_regex))
        .collect()
}

fn parse_item(item: &Value, stop_regex: &[String]) -> Result<Completion, String> {
    let text = item
        .get("text")
        .and_then(Value::as_str)
        .ok_or("a completion without `text`")?
        .to_owned();
    let meta = item
        .get("meta_info")
        .ok_or("a completion without `meta_info`")?;
    let finish_reason = match meta.get("finish_reason") {
        // A stop regex's `matched` is its pattern (`FINISHED_MATCHED_REGEX`), where a stop
        // string's is the string: told apart by the patterns the request sent.
        Some(Value::Object(reason)) => match reason.get("type").and_then(Value::as_str) {
            Some("stop")
                if reason
                    .get("matched")
                    .and_then(Value::as_str)
                    .is_some_and(|m| stop_regex.iter().any(|p| p == m)) =>
            {
                STOP_REGEX.to_owned()
            }
            kind => kind.unwrap_or("unknown").to_owned(),
        },
        Some(Value::String(reason)) => reason.clone(),
        _ => "none".to_owned(),
    };
    let tokens = match meta.get("output_token_logprobs") {
        Some(Value::Array(entries)) => {
            super::tokens_with_unknowns(entries.iter().map(parse_token).collect::<Result<_, _>>()?)
        }
        Some(Value::Null) | None => Vec::new(),
        Some(other) => return Err(format!("`output_token_logprobs` is not a list: {other}")),
    };
    let count = |key: &str| {
        meta.get(key)
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
    };
    Ok(Completion {
        completion_tokens: count("completion_tokens").unwrap_or(tokens.len() as u32),
        prompt_tokens: count("prompt_tokens").unwrap_or(0),
        text,
        tokens,
        finish_reason,
    })
}

type RawToken = (Option<f64>, Option<u32>, Option<String>);

/// `[logprob|null, token_id, text|null]` (older servers send the pair without the text).
fn parse_token(entry: &Value) -> Result<RawToken, String> {
    let fields = entry
        .as_array()
        .ok_or_else(|| format!("a token log-prob entry that is not a list: {entry}"))?;
    let logprob = match fields.first() {
        Some(Value::Null) => None,
        Some(v) => Some(v.as_f64().ok_or_else(|| {
            format!("a token log-prob entry with a log-prob that is not a number: {entry}")
        })?),
        None => return Err(format!("an empty token log-prob entry: {entry}")),
    };
    Ok((
        logprob,
        fields
            .get(1)
            .and_then(Value::as_u64)
            .and_then(|id| u32::try_from(id).ok()),
        fields.get(2).and_then(Value::as_str).map(str::to_owned),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, Expansion, PolicyConfig, SearchConfig};
    use crate::request_setup::RequestSetup;
    use serde_json::json;

    fn body_of(p: &SglangPolicy, prompts: &[String], n: usize) -> Value {
        serde_json::to_value(SglangGenerate::body(&p.request(None, prompts, n))).unwrap()
    }

    /// The client a sweep with this `[policy]` and `expansion` builds.
    fn client(policy: PolicyConfig, expansion: Expansion) -> SglangPolicy {
        let config = Config {
            policy,
            search: SearchConfig {
                expansion,
                ..SearchConfig::default()
            },
            ..Config::default()
        };
        SglangPolicy::new(&config.policy, &RequestSetup::from_config(&config).unwrap()).unwrap()
    }

    fn policy(sampling: Sampling) -> SglangPolicy {
        client(
            PolicyConfig {
                sampling,
                stop: Some(vec!["\n\n".into()]),
                ..PolicyConfig::default()
            },
            Expansion::Tactic,
        )
    }

    #[test]
    fn repeat_mode_repeats_prompts_and_sends_explicit_sampling() {
        let p = policy(Sampling::Repeat);
        let prompts = vec!["a".to_owned(), "b".to_owned()];
        let body = body_of(&p, &prompts, 2);
        assert_eq!(
            body,
            json!({
                "text": ["a", "a", "b", "b"],
                "sampling_params": {"temperature": 1.3, "top_p": 0.95, "max_new_tokens": 128,
                    "stop": ["\n\n"], "stop_regex": [crate::templates::DEEPSEEK_TACTIC_END]},
                "return_logprob": true,
                "return_text_in_logprobs": true
            })
        );
    }

    #[test]
    fn stop_regex_is_sent_when_there_is_one_and_left_out_when_not() {
        let none = client(
            PolicyConfig {
                stop_regex: Some(Vec::new()),
                ..PolicyConfig::default()
            },
            Expansion::Tactic,
        );
        let prompts = vec!["a".to_owned()];
        let params = &body_of(&none, &prompts, 1)["sampling_params"];
        assert_eq!(params.get("stop_regex"), None, "{params}");
        // Proof mode runs to the fence; a step prover's template has none of its own.
        for p in [
            client(PolicyConfig::default(), Expansion::Proof),
            client(
                PolicyConfig {
                    template: "internlm-step-prover".into(),
                    ..PolicyConfig::default()
                },
                Expansion::Tactic,
            ),
        ] {
            let params = &body_of(&p, &prompts, 1)["sampling_params"];
            assert_eq!(params.get("stop_regex"), None, "{params}");
        }
    }

    #[test]
    fn n_mode_sends_each_prompt_once_with_n() {
        let p = policy(Sampling::N);
        let prompts = vec!["a".to_owned(), "b".to_owned()];
        let body = body_of(&p, &prompts, 3);
        assert_eq!(body["text"], json!(["a", "b"]));
        assert_eq!(body["sampling_params"]["n"], json!(3));
        // One prompt with n = 1 is sent as a string: SGLang then answers a bare object.
        let one = vec!["a".to_owned()];
        assert_eq!(body_of(&p, &one, 1)["text"], json!("a"));
        let body = body_of(&p, &one, 2);
        assert_eq!(body["text"], json!(["a"]));
    }

    /// SGLang answers a regex stop with the pattern as `matched` (`FINISHED_MATCHED_REGEX`).
    #[test]
    fn a_stop_regex_match_is_told_from_a_stop_string_by_its_pattern() {
        let answer = |matched: &str| {
            json!([{"text": "  simp\n  r", "meta_info": {
                "finish_reason": {"type": "stop", "matched": matched}}}])
        };
        let patterns = [crate::templates::DEEPSEEK_TACTIC_END.to_owned()];
        let c = parse_generate_response(answer(&patterns[0]), 1, &patterns).unwrap();
        assert_eq!(c[0].finish_reason, super::STOP_REGEX);
        let c = parse_generate_response(answer("\n\n"), 1, &patterns).unwrap();
        assert_eq!(c[0].finish_reason, "stop");
    }

    #[test]
    fn parses_a_bare_object_with_token_texts() {
        let answer = json!({
            "text": "simp\n",
            "meta_info": {
                "id": "x", "prompt_tokens": 10, "completion_tokens": 2, "cached_tokens": 0,
                "e2e_latency": 0.1,
                "finish_reason": {"type": "stop", "matched": "\n"},
                "output_token_logprobs": [[-0.5, 3, "simp"], [-0.25, 4, "\n"]]
            }
        });
        let c = parse_generate_response(answer, 1, &[]).unwrap();
        assert_eq!(c[0].text, "simp\n");
        assert_eq!(c[0].finish_reason, "stop");
        assert_eq!((c[0].prompt_tokens, c[0].completion_tokens), (10, 2));
        assert_eq!(
            c[0].tokens[0],
            super::super::TokenLogprob {
                logprob: -0.5,
                token_id: Some(3),
                text: Some("simp".into())
            }
        );
    }

    /// orjson writes NaN/inf as `null` (SGLang `http_server.py` `orjson_response`).
    #[test]
    fn a_null_logprob_takes_its_completions_lowest() {
        let answer = json!({"text": "ab", "meta_info": {"finish_reason": {"type": "stop"},
            "output_token_logprobs": [[-0.5, 1, "a"], [null, 2, "b"], [-2.0, 3, ""]]}});
        let c = parse_generate_response(answer, 1, &[]).unwrap();
        let lps: Vec<f64> = c[0].tokens.iter().map(|t| t.logprob).collect();
        assert_eq!(lps, [-0.5, -2.0, -2.0]);
    }

    #[test]
    fn parses_lists_null_texts_and_null_finish_reason() {
        let item = |t: &str, reason: Value| {
            json!({"text": t, "meta_info": {"finish_reason": reason,
                "output_token_logprobs": [[-1.0, 7, null]]}})
        };
        let answer = json!([
            item("a", json!({"type": "length", "length": 128})),
            item("b", Value::Null)
        ]);
        let c = parse_generate_response(answer, 2, &[]).unwrap();
        assert_eq!(c[0].finish_reason, "length");
        assert_eq!(c[1].finish_reason, "none");
        assert_eq!(c[1].tokens[0].text, None);
        // Without counts in `meta_info`, the log-prob entries are the generated tokens.
        assert_eq!((c[1].prompt_tokens, c[1].completion_tokens), (0, 1));
        assert!(parse_generate_response(json!([]), 2, &[])
            .unwrap_err()
            .contains("expected 2"));
        assert!(parse_generate_response(json!("x"), 1, &[]).is_err());
    }
}

//! The OpenAI-compatible `POST /v1/completions` (vLLM, SGLang, ...).
//!
//! With a list of prompts and `n`, `choices[i].index` is `prompt * n + sample`; the order of
//! the list itself is not promised, so choices are placed by their index. Per-token log-probs
//! come from `logprobs.token_logprobs` with the token texts in `logprobs.tokens`.
//!
//! vLLM answers 404 "The model `default` does not exist." (`serving_engine.py`
//! `_check_model`) to any name it does not serve, so with `[policy].model` unset the client
//! asks `GET /v1/models` once and sends the id listed there.

use serde::Serialize;
use serde_json::Value;

use super::http_policy::{HttpPolicy, Request, SamplingSettings, WireFormat};
use super::Completion;
use crate::bos::PromptToken;

/// The OpenAI completions API.
pub struct OpenAiCompletions;

/// The policy client of an OpenAI-compatible `/v1/completions`.
pub type OpenAiPolicy = HttpPolicy<OpenAiCompletions>;

impl WireFormat for OpenAiCompletions {
    const PATH: &'static str = "/v1/completions";
    const NAMES_MODEL: bool = true;
    const STOP_REGEX: bool = false;

    /// vLLM's, at the root (`api_server.py`); SGLang's OpenAI API has none and answers 404.
    const TOKENIZE_PATH: &'static str = "/tokenize";

    /// `add_special_tokens` as the completions route sets it by default (true); vLLM answers
    /// `{"tokens", "count", "max_model_len"}` and, where it knows `return_token_strs`,
    /// `token_strs` (`serving_tokenization.py` `create_tokenize`, `protocol.py`
    /// `TokenizeCompletionRequest`); older versions ignore the field they do not know.
    fn tokenize_body<'a>(
        prompt: &'a str,
        model: Option<&'a str>,
    ) -> impl Serialize + Send + Sync + 'a {
        serde_json::json!({
            "model": model,
            "prompt": prompt,
            "add_special_tokens": true,
            "return_token_strs": true,
        })
    }

    fn parse_tokens(answer: Value) -> Result<Vec<PromptToken>, String> {
        let ids = answer
            .get("tokens")
            .and_then(Value::as_array)
            .ok_or("an answer without a `tokens` list")?;
        let texts = answer.get("token_strs").and_then(Value::as_array);
        ids.iter()
            .enumerate()
            .map(|(i, id)| {
                let id = id
                    .as_u64()
                    .and_then(|id| u32::try_from(id).ok())
                    .ok_or_else(|| format!("token {id} is not a token id"))?;
                let text = texts
                    .and_then(|t| t.get(i))
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                Ok(PromptToken { id, text })
            })
            .collect()
    }

    fn body<'a>(request: &'a Request<'a>) -> impl Serialize + Send + Sync + 'a {
        let settings = request.settings;
        CompletionRequest {
            model: request.model.unwrap_or_default(),
            prompt: &request.texts,
            n: request.samples_per_text,
            max_tokens: settings.max_new_tokens,
            temperature: settings.temperature,
            top_p: settings.top_p,
            stop: &settings.stop,
            logprobs: 1,
        }
    }

    fn parse(
        answer: Value,
        expected: usize,
        _settings: &SamplingSettings,
    ) -> Result<Vec<Completion>, String> {
        parse_completions_response(&answer, expected)
    }
}

#[derive(Serialize)]
struct CompletionRequest<'a> {
    model: &'a str,
    prompt: &'a [&'a str],
    n: usize,
    max_tokens: u32,
    temperature: f64,
    top_p: f64,
    stop: &'a [String],
    logprobs: u32,
}

/// The completions of a `/v1/completions` answer in `index` order, checked to number `expected`.
pub fn parse_completions_response(
    answer: &Value,
    expected: usize,
) -> Result<Vec<Completion>, String> {
    let choices = answer
        .get("choices")
        .and_then(Value::as_array)
        .ok_or("an answer without a `choices` list")?;
    if choices.len() != expected {
        return Err(format!(
            "expected {expected} choices, got {}",
            choices.len()
        ));
    }
    let mut slots: Vec<Option<Completion>> = vec![None; expected];
    for (position, choice) in choices.iter().enumerate() {
        let index = match choice.get("index") {
            Some(v) => v
                .as_u64()
                .and_then(|i| usize::try_from(i).ok())
                .ok_or_else(|| format!("choice index {v} is not a number"))?,
            None => position,
        };
        let slot = slots
            .get_mut(index)
            .ok_or_else(|| format!("choice index {index} out of range 0..{expected}"))?;
        if slot.is_some() {
            return Err(format!("choice index {index} appears twice"));
        }
        *slot = Some(parse_choice(choice)?);
    }
    let mut completions: Vec<Completion> = slots.into_iter().flatten().collect();
    share_usage(answer, &mut completions);
    Ok(completions)
}

/// `usage` counts the whole request; each choice gets an even share (the remainder to the
/// first ones), so per-sample sums give the request's totals. Without `usage`, a choice's
/// generated tokens are its log-prob entries.
fn share_usage(answer: &Value, completions: &mut [Completion]) {
    let usage = |key: &str| {
        answer
            .pointer(&format!("/usage/{key}"))
            .and_then(Value::as_u64)
    };
    let n = completions.len().max(1) as u64;
    let share = |total: u64, i: usize| (total / n + u64::from((i as u64) < total % n)) as u32;
    let (prompt, generated) = (usage("prompt_tokens"), usage("completion_tokens"));
    for (i, c) in completions.iter_mut().enumerate() {
        c.prompt_tokens = prompt.map_or(0, |t| share(t, i));
        c.completion_tokens = generated.map_or(c.tokens.len() as u32, |t| share(t, i));
    }
}

/// A choice of `/v1/completions` (its `text`) or `/v1/chat/completions` (its
/// `message.content`).
fn parse_choice(choice: &Value) -> Result<Completion, String> {
    let text = choice
        .get("text")
        .or_else(|| choice.pointer("/message/content"))
        .and_then(Value::as_str)
        .ok_or("a choice without `text` or `message.content`")?
        .to_owned();
    let finish_reason = choice
        .get("finish_reason")
        .and_then(Value::as_str)
        .unwrap_or("none")
        .to_owned();
    let tokens = match choice.get("logprobs") {
        Some(Value::Object(lp)) => {
            let logprobs = lp
                .get("token_logprobs")
                .and_then(Value::as_array)
                .ok_or("`logprobs` without a `token_logprobs` list")?;
            let texts = lp.get("tokens").and_then(Value::as_array);
            let raw = logprobs
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    let logprob = match v {
                        Value::Null => None,
                        v => Some(
                            v.as_f64()
                                .ok_or_else(|| format!("token log-prob {v} is not a number"))?,
                        ),
                    };
                    let text = texts
                        .and_then(|t| t.get(i))
                        .and_then(Value::as_str)
                        .map(str::to_owned);
                    Ok((logprob, None, text))
                })
                .collect::<Result<_, String>>()?;
            super::tokens_with_unknowns(raw)
        }
        _ => Vec::new(),
    };
    Ok(Completion {
        text,
        tokens,
        finish_reason,
        ..Completion::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, PolicyConfig, Sampling};
    use crate::request_setup::RequestSetup;
    use serde_json::json;

    #[test]
    fn request_carries_every_sampling_value() {
        let config = Config {
            policy: PolicyConfig {
                sampling: Sampling::N,
                model: Some("deepseek".into()),
                stop: Some(Vec::new()),
                ..PolicyConfig::default()
            },
            ..Config::default()
        };
        let setup = RequestSetup::from_config(&config).unwrap();
        let p = OpenAiPolicy::new(&config.policy, &setup).unwrap();
        let prompts = vec!["a".to_owned(), "b".to_owned()];
        assert_eq!(
            serde_json::to_value(OpenAiCompletions::body(&p.request(
                Some("deepseek"),
                &prompts,
                4
            )))
            .unwrap(),
            json!({"model": "deepseek", "prompt": ["a", "b"], "n": 4, "max_tokens": 128,
                   "temperature": 1.3, "top_p": 0.95, "stop": [], "logprobs": 1}),
            "the template's stop_regex is SGLang's and not sent"
        );
    }

    #[test]
    fn choices_are_placed_by_index() {
        let choice = |i: u64, t: &str| {
            json!({"index": i, "text": t, "finish_reason": "stop",
                   "logprobs": {"tokens": [t], "token_logprobs": [-(i as f64)],
                                "top_logprobs": null, "text_offset": [0]}})
        };
        let answer = json!({"id": "c", "object": "text_completion",
            "choices": [choice(2, "c"), choice(0, "a"), choice(1, "b")]});
        let c = parse_completions_response(&answer, 3).unwrap();
        let texts: Vec<&str> = c.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(texts, ["a", "b", "c"]);
        // No `usage`: the log-prob entries are the generated tokens.
        assert_eq!((c[0].prompt_tokens, c[0].completion_tokens), (0, 1));
        assert_eq!(c[2].tokens[0].logprob, -2.0);
        assert_eq!(c[2].tokens[0].text.as_deref(), Some("c"));
        let mut with_usage = answer.clone();
        with_usage["usage"] = json!({"prompt_tokens": 10, "completion_tokens": 7});
        let c = parse_completions_response(&with_usage, 3).unwrap();
        let prompt: Vec<u32> = c.iter().map(|c| c.prompt_tokens).collect();
        let generated: Vec<u32> = c.iter().map(|c| c.completion_tokens).collect();
        assert_eq!((prompt, generated), (vec![4, 3, 3], vec![3, 2, 2]));
        let twice = json!({"choices": [choice(0, "a"), choice(0, "b"), choice(1, "c")]});
        assert!(parse_completions_response(&twice, 3)
            .unwrap_err()
            .contains("twice"));
    }
}

//! The policy: proof states in, candidate completions with token log-probs out.

mod endpoints;
pub mod http_policy;
pub mod openai;
pub mod openai_chat;
pub mod sglang;
mod utilisation;

use std::sync::Arc;

use async_trait::async_trait;

use crate::bos::{BosCheck, PromptToken};
use crate::config::{PolicyBackend, PolicyConfig};
use crate::http_retry::HttpError;
use crate::request_setup::RequestSetup;
use formats::progress::InFlightStep;
use formats::tokenizer_config::BosToken;
use formats::utilisation::UrlUtilisation;

/// One completion as the server returned it, before tactic extraction.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Completion {
    pub text: String,
    /// Per generated token: log-prob and, when the server returned it, the token's text.
    pub tokens: Vec<TokenLogprob>,
    /// `stop`, [`STOP_REGEX`], `length` or `abort`.
    pub finish_reason: String,
    /// Tokens generated, as the server counted them (SGLang `meta_info.completion_tokens`,
    /// OpenAI `usage.completion_tokens` shared out); `tokens.len()` when it did not say.
    pub completion_tokens: u32,
    /// This sample's share of the prompt tokens the server counted (SGLang
    /// `meta_info.prompt_tokens`; OpenAI `usage.prompt_tokens` shared out over the choices).
    pub prompt_tokens: u32,
}

/// The finish reason of a completion SGLang ended on a `stop_regex` match. Unlike a stop
/// string's, the matched text stays (SGLang's `trim_matched_stop` trims only literal
/// matches): the completion's last line is the start of one the model went on to write.
pub const STOP_REGEX: &str = "stop_regex";

#[derive(Debug, Clone, PartialEq, Default)]
pub struct TokenLogprob {
    pub logprob: f64,
    pub token_id: Option<u32>,
    pub text: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// A request that failed: refused for a reason retrying will not fix (a 4xx other than
    /// 429), unavailable after every retry (connection errors, timeouts, 429, 5xx), or
    /// answered with a body we cannot read.
    #[error("policy server {0}")]
    Server(#[from] HttpError),
    /// The health check found servers that do not answer; each with the reason.
    #[error("policy server(s) down: {}", describe_down(.down))]
    Down { down: Vec<(String, String)> },
    /// The `[policy]` section cannot make a client.
    #[error("invalid [policy] config: {0}")]
    Config(String),
}

fn describe_down(down: &[(String, String)]) -> String {
    down.iter()
        .map(|(url, why)| format!("{url} ({why})"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A generate backend. One call is one request to one server.
#[async_trait]
pub trait Policy: Send + Sync {
    /// Returns, for each prompt in order, exactly `n` completions, or none for a prompt the
    /// server refused as longer than its context (no candidates for that node).
    async fn generate(
        &self,
        prompts: &[String],
        n: usize,
    ) -> Result<Vec<Vec<Completion>>, PolicyError>;

    /// Checks every server once at start, waiting for those still loading, and learns what
    /// the requests need from them (model id, context); `PolicyError::Down` names those that
    /// do not answer. In-process doubles have nothing to check.
    async fn health_check(&self) -> Result<(), PolicyError> {
        Ok(())
    }

    /// How the server tokenizes `prompt`, its special tokens included, for the start-up BOS
    /// check; `None` when it cannot say. In-process doubles have no tokenizer.
    async fn prompt_tokens(&self, _prompt: &str) -> Result<Option<Vec<PromptToken>>, PolicyError> {
        Ok(None)
    }

    /// The most prompt tokens a request may carry (the server's context less the completion),
    /// once known; prompts are shortened to fit. `None`: unknown, prompts go as they are.
    fn prompt_budget(&self) -> Option<usize> {
        None
    }

    /// Per server, the client's request timeline so far (see [`UrlUtilisation`]); snapshots
    /// taken before and after a sweep give the sweep's share. Doubles have no servers.
    fn utilisation(&self) -> Vec<UrlUtilisation> {
        Vec::new()
    }

    /// Every change of a server's requests in flight since the last call, oldest first. A
    /// call with `keep_recording` starts the record (with each server's levels then) or keeps
    /// it going; one without stops it, so only what the caller has yet to drain is held.
    /// Doubles have no servers.
    fn drain_in_flight_steps(&self, _keep_recording: bool) -> Vec<InFlightStep> {
        Vec::new()
    }
}

/// Whether a rejection is the server's "prompt too long for the context": SGLang's 400
/// "The input (N tokens) is longer than the model's context length (M tokens)." or
/// "Requested token count exceeds the model's maximum context length ..."
/// (`tokenizer_manager.py` `_validate_one_request`); vLLM's "This model's maximum context
/// length is ..." (`serving_engine.py`, 0.9-0.10), "... exceeds model's maximum context
/// length" and "... longer than the maximum model length of ..." (0.33).
fn is_context_overflow(e: &PolicyError) -> bool {
    match e {
        PolicyError::Server(HttpError::Rejected {
            status: 400,
            message,
            ..
        }) => {
            let m = message.to_lowercase();
            m.contains("context length") || m.contains("maximum model length")
        }
        _ => false,
    }
}

/// `request(prompts)`, except that a context-length rejection costs only the prompts that do
/// not fit: a batch is then sent again one prompt at a time, and a prompt the server still
/// refuses gets no completions instead of failing the batch (and the theorem).
async fn fit_context<'a, F, Fut>(
    prompts: &'a [String],
    request: F,
) -> Result<Vec<Vec<Completion>>, PolicyError>
where
    F: Fn(&'a [String]) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<Vec<Completion>>, PolicyError>>,
{
    let e = match request(prompts).await {
        Err(e) if is_context_overflow(&e) => e,
        other => return other,
    };
    if prompts.len() == 1 {
        tracing::warn!(error = %e, "a prompt does not fit the server's context: no candidates for its node");
        return Ok(vec![Vec::new()]);
    }
    let mut out = Vec::with_capacity(prompts.len());
    for prompt in prompts {
        match request(std::slice::from_ref(prompt)).await {
            Ok(mut one) => out.push(one.pop().unwrap_or_default()),
            Err(e) if is_context_overflow(&e) => {
                tracing::warn!(error = %e, "a prompt does not fit the server's context: no candidates for its node");
                out.push(Vec::new());
            }
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// Token entries whose log-prob may be `null` (SGLang serializes with orjson, which writes a
/// NaN or infinity as `null`): an unknown log-prob counts as the completion's least likely
/// known token, so one bad number neither fails the batch nor makes a candidate look likely.
fn tokens_with_unknowns(raw: Vec<(Option<f64>, Option<u32>, Option<String>)>) -> Vec<TokenLogprob> {
    let floor = raw
        .iter()
        .filter_map(|t| t.0)
        .filter(|lp| lp.is_finite())
        .fold(None, |min: Option<f64>, lp| {
            Some(min.map_or(lp, |m| m.min(lp)))
        })
        .unwrap_or(UNKNOWN_LOGPROB);
    raw.into_iter()
        .map(|(logprob, token_id, text)| TokenLogprob {
            logprob: logprob.filter(|lp| lp.is_finite()).unwrap_or(floor),
            token_id,
            text,
        })
        .collect()
}

/// A token's log-prob when no token of its completion has a known one (as unlikely as the
/// simulators' junk).
const UNKNOWN_LOGPROB: f64 = -30.0;

/// Splits the flat prompt-major list (p0s0..p0s(n-1), p1s0, ...) into one list per prompt.
fn group_by_prompt(flat: Vec<Completion>, n: usize) -> Vec<Vec<Completion>> {
    let mut flat = flat.into_iter();
    let prompts = flat.len() / n;
    (0..prompts)
        .map(|_| flat.by_ref().take(n).collect())
        .collect()
}

/// The prompt tokens left once `max_new_tokens` is reserved, from `[policy].context_tokens`
/// or, failing that, the context the server reported at start.
fn budget(
    config_context: Option<u32>,
    reported: Option<u32>,
    max_new_tokens: u32,
) -> Option<usize> {
    config_context
        .or(reported)
        .map(|context| crate::templates::prompt_budget(context, max_new_tokens))
}

/// The start-up BOS check (see [`crate::bos`]): how `policy`'s server tokenizes `prompt`,
/// judged against the model's BOS token when it is known.
pub async fn check_bos(
    policy: &dyn Policy,
    prompt: &str,
    bos: Option<&BosToken>,
) -> Result<BosCheck, PolicyError> {
    let tokens = policy.prompt_tokens(prompt).await?;
    Ok(crate::bos::judge(tokens.as_deref(), bos))
}

/// The client `[policy].backend` names, over `[policy].urls`, sending `setup`'s stops, token
/// limit and context with every request.
pub fn build_policy(
    config: &PolicyConfig,
    setup: &RequestSetup,
) -> Result<Arc<dyn Policy>, PolicyError> {
    Ok(match config.backend {
        PolicyBackend::Sglang => Arc::new(sglang::SglangPolicy::new(config, setup)?),
        PolicyBackend::Openai => Arc::new(openai::OpenAiPolicy::new(config, setup)?),
    })
}

//! The policy: proof states in, candidate completions with token log-probs out.

mod endpoints;
pub mod openai;
pub mod sglang;
mod utilisation;

use std::sync::Arc;

use async_trait::async_trait;

use crate::config::{PolicyBackend, PolicyConfig};
use crate::http_retry::HttpError;
pub use utilisation::UrlUtilisation;

/// One completion as the server returned it, before tactic extraction.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Completion {
    pub text: String,
    /// Per generated token: log-prob and, when the server returned it, the token's text.
    pub tokens: Vec<TokenLogprob>,
    /// `stop`, `length` or `abort`.
    pub finish_reason: String,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct TokenLogprob {
    pub logprob: f64,
    pub token_id: Option<u32>,
    pub text: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The server refused the request for a reason retrying will not fix (a 4xx other than 429).
    #[error("policy server {url} rejected the request ({status}): {message}")]
    Rejected {
        url: String,
        status: u16,
        message: String,
    },
    /// Connection errors, timeouts, 429 and 5xx still failing after every retry.
    #[error("policy server {url} unavailable after {attempts} attempts: {last_error}")]
    Unavailable {
        url: String,
        attempts: u32,
        last_error: String,
    },
    /// The server answered 200 with a body we cannot read.
    #[error("policy server {url} sent an unexpected response: {message}")]
    BadResponse { url: String, message: String },
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

impl PolicyError {
    fn from_http(url: &str, e: HttpError) -> Self {
        let url = url.to_owned();
        match e {
            HttpError::Rejected { status, message } => Self::Rejected {
                url,
                status,
                message,
            },
            HttpError::Unavailable {
                attempts,
                last_error,
            } => Self::Unavailable {
                url,
                attempts,
                last_error,
            },
            HttpError::BadResponse { message } => Self::BadResponse { url, message },
        }
    }
}

/// A generate backend. One call is one request to one server.
#[async_trait]
pub trait Policy: Send + Sync {
    /// Returns, for each prompt in order, exactly `n` completions.
    async fn generate(
        &self,
        prompts: &[String],
        n: usize,
    ) -> Result<Vec<Vec<Completion>>, PolicyError>;

    /// Checks every server once at start; `PolicyError::Down` names those that do not answer.
    /// In-process doubles have nothing to check.
    async fn health_check(&self) -> Result<(), PolicyError> {
        Ok(())
    }

    /// Per server, the client's request timeline so far (see [`UrlUtilisation`]); snapshots
    /// taken before and after a sweep give the sweep's share. Doubles have no servers.
    fn utilisation(&self) -> Vec<UrlUtilisation> {
        Vec::new()
    }
}

/// Splits the flat prompt-major list (p0s0..p0s(n-1), p1s0, ...) into one list per prompt.
fn group_by_prompt(flat: Vec<Completion>, n: usize) -> Vec<Vec<Completion>> {
    let mut flat = flat.into_iter();
    let prompts = flat.len() / n;
    (0..prompts)
        .map(|_| flat.by_ref().take(n).collect())
        .collect()
}

/// The client `[policy].backend` names, over `[policy].urls`.
pub fn build_policy(config: &PolicyConfig) -> Result<Arc<dyn Policy>, PolicyError> {
    Ok(match config.backend {
        PolicyBackend::Sglang => Arc::new(sglang::SglangPolicy::new(config)?),
        PolicyBackend::Openai => Arc::new(openai::OpenAiPolicy::new(config)?),
    })
}

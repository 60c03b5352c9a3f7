//! The policy: proof states in, candidate completions with token log-probs out.

use async_trait::async_trait;

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
}

/// A generate backend. One call is one request to one server.
#[async_trait]
pub trait Policy: Send + Sync {
    /// Returns, for each prompt in order, exactly `n` completions.
    async fn generate(&self, prompts: &[String], n: usize) -> Result<Vec<Vec<Completion>>, PolicyError>;
}

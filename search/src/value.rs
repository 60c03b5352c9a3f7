//! The value scorer: proof states in, energies out (lower = more provable).

use async_trait::async_trait;

#[derive(Debug, thiserror::Error)]
pub enum ValueError {
    #[error("EBM server {url} rejected the request ({status}): {message}")]
    Rejected {
        url: String,
        status: u16,
        message: String,
    },
    #[error("EBM server {url} unavailable after {attempts} attempts: {last_error}")]
    Unavailable {
        url: String,
        attempts: u32,
        last_error: String,
    },
    #[error("EBM server {url} sent an unexpected response: {message}")]
    BadResponse { url: String, message: String },
}

#[async_trait]
pub trait ValueScorer: Send + Sync {
    /// One energy per state, in order.
    async fn score(&self, states: &[String]) -> Result<Vec<f64>, ValueError>;
}

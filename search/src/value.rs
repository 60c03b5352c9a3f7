//! The value scorer: proof states in, energies out (lower = more provable).

use async_trait::async_trait;
use formats::ebm_api::{EncodeRequest, EncodeResponse, ScoreRequest, ScoreResponse};
use formats::identity::{HealthResponse, ModelIdentity};
use serde::{de::DeserializeOwned, Serialize};

use crate::config::EbmConfig;
use crate::http_retry::{get_json, post_json, probe, HttpError, RetryPolicy};

/// A request to the EBM server that failed (after its retries), and why.
#[derive(Debug, thiserror::Error)]
#[error("EBM server {0}")]
pub struct ValueError(#[from] pub HttpError);

#[async_trait]
pub trait ValueScorer: Send + Sync {
    /// One energy per state, in order.
    async fn score(&self, states: &[String]) -> Result<Vec<f64>, ValueError>;
}

/// The client of `stepwise ebm serve`: `POST /score`, `POST /encode`, `GET /health`.
pub struct EbmClient {
    client: reqwest::Client,
    /// Base URL without a trailing slash.
    url: String,
    retry: RetryPolicy,
}

impl EbmClient {
    /// `None` when `[ebm].url` is empty: the search then runs on log-probs alone.
    pub fn from_config(config: &EbmConfig) -> Result<Option<Self>, ValueError> {
        let url = config.url.trim().trim_end_matches('/');
        if url.is_empty() {
            return Ok(None);
        }
        let client = reqwest::Client::builder().build().map_err(|e| {
            ValueError(HttpError::BadResponse {
                url: url.to_owned(),
                message: format!("cannot build HTTP client: {e}"),
            })
        })?;
        Ok(Some(Self {
            client,
            url: url.to_owned(),
            retry: RetryPolicy::new(config.max_retries, config.request_timeout),
        }))
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// One embedding per text, in order.
    pub async fn encode(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, ValueError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let answer: EncodeResponse = self
            .post(
                "/encode",
                &EncodeRequest {
                    texts: texts.to_vec(),
                },
            )
            .await?;
        self.check_len("embeddings", answer.embeddings.len(), texts.len())?;
        Ok(answer.embeddings)
    }

    /// `GET /health`: Ok when the server answers 2xx, else why not.
    pub async fn health(&self) -> Result<(), ValueError> {
        let url = format!("{}/health", self.url);
        probe(&self.client, &url, self.retry.timeout)
            .await
            .map_err(|e| {
                ValueError(HttpError::Unavailable {
                    url,
                    attempts: 1,
                    last_error: e.to_string(),
                })
            })
    }

    /// The model the server reports on `GET /health`; Err(why) when it reports none (an
    /// older `ebm serve` answers with an empty body).
    pub async fn identity(&self) -> Result<ModelIdentity, String> {
        let url = format!("{}/health", self.url);
        get_json::<HealthResponse>(&self.client, &url, self.retry.timeout)
            .await
            .map(|health| health.identity)
    }

    async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ValueError> {
        let url = format!("{}{path}", self.url);
        Ok(post_json(&self.client, &url, body, &self.retry).await?)
    }

    fn check_len(&self, what: &str, got: usize, expected: usize) -> Result<(), ValueError> {
        if got == expected {
            return Ok(());
        }
        Err(ValueError(HttpError::BadResponse {
            url: self.url.clone(),
            message: format!("expected {expected} {what}, got {got}"),
        }))
    }
}

#[async_trait]
impl ValueScorer for EbmClient {
    async fn score(&self, states: &[String]) -> Result<Vec<f64>, ValueError> {
        if states.is_empty() {
            return Ok(Vec::new());
        }
        let answer: ScoreResponse = self
            .post(
                "/score",
                &ScoreRequest {
                    states: states.to_vec(),
                },
            )
            .await?;
        self.check_len("energies", answer.energies.len(), states.len())?;
        Ok(answer.energies)
    }
}

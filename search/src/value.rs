//! The value scorer: proof states in, energies out (lower = more provable).

use async_trait::async_trait;
use formats::ebm_api::{EncodeRequest, EncodeResponse, HeadRequest, ScoreRequest, ScoreResponse};
use formats::identity::{EnergyScale, HeadHealth, ModelIdentity};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::config::{EbmConfig, SearchConfig};
use crate::http_retry::{get_json, post_json, probe, HttpError, RetryPolicy};

/// A request to the EBM server that failed (after its retries), and why.
#[derive(Debug, thiserror::Error)]
#[error("EBM server {0}")]
pub struct ValueError(#[from] pub HttpError);

#[async_trait]
pub trait ValueScorer: Send + Sync {
    /// One energy per state, in order; `None` for a state the model cannot score (the search
    /// then ranks that node by log-prob alone).
    async fn score(&self, states: &[String]) -> Result<Vec<Option<f64>>, ValueError>;

    /// The figures its energies are standardised with before they enter the priority
    /// (`search.ebm_normalize`: the served head's own mean and std); `None`: raw energies.
    fn energy_scale(&self) -> Option<EnergyScale> {
        None
    }
}

/// The client of `stepwise ebm serve`: `POST /score`, `POST /encode`, `GET /health`.
pub struct EbmClient {
    client: reqwest::Client,
    /// Base URL without a trailing slash.
    url: String,
    retry: RetryPolicy,
    /// A state the server scored, to tell a server that fails everything from states it
    /// cannot score (see [`EbmClient::isolate`]).
    scored_before: std::sync::Mutex<Option<String>>,
    /// What [`ValueScorer::energy_scale`] answers (see [`EbmClient::with_energy_scale`]).
    energy_scale: Option<EnergyScale>,
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
            scored_before: std::sync::Mutex::new(None),
            energy_scale: None,
        }))
    }

    /// This client with the scale its energies are standardised with in the priority (the
    /// one [`EbmAtStart::energy_scale`] found).
    pub fn with_energy_scale(self, energy_scale: Option<EnergyScale>) -> Self {
        Self {
            energy_scale,
            ..self
        }
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
                    last_status: None,
                })
            })
    }

    /// The model the server reports on `GET /health`; Err(why) when it reports none (an
    /// older `ebm serve` answers with an empty body).
    pub async fn identity(&self) -> Result<ModelIdentity, String> {
        self.served().await.map(|served| served.identity)
    }

    /// What `GET /health` says the server serves: the identity and the head's file and
    /// energy scale; Err(why) when it reports no identity.
    pub async fn served(&self) -> Result<ServedModel, String> {
        let url = format!("{}/health", self.url);
        get_json::<ServedModel>(&self.client, &url, self.retry.timeout).await
    }

    /// `POST /head`: the server serves the head at `path` (a path on the server's file
    /// system; absolute is safest) from now on, and answers what it then serves. A head made
    /// for another encoder is a 409 (`ebm serve` names both identities), never retried.
    pub async fn serve_head(&self, path: &str) -> Result<ServedModel, ValueError> {
        self.post(
            "/head",
            &HeadRequest {
                path: path.to_owned(),
            },
        )
        .await
    }

    /// [`EbmClient::served`], read once when a sweep starts.
    pub async fn at_start(&self) -> EbmAtStart {
        EbmAtStart {
            url: self.url.clone(),
            served: self.served().await,
        }
    }

    async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ValueError> {
        self.post_with(path, body, &self.retry).await
    }

    async fn post_with<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        retry: &RetryPolicy,
    ) -> Result<T, ValueError> {
        let url = format!("{}{path}", self.url);
        Ok(post_json(&self.client, &url, body, retry).await?)
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

/// `GET /health` as the search reads it (`formats::identity::HealthResponse` and
/// `HeadHealth` of one body).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ServedModel {
    pub identity: ModelIdentity,
    #[serde(flatten)]
    pub head: HeadHealth,
}

/// What the EBM server served when the sweep started, read once: the manifest's identity and
/// the priority's energy scale come from the same answer, so they name the same head.
#[derive(Debug, Clone)]
pub struct EbmAtStart {
    pub url: String,
    /// Err(why) when the server reports no identity.
    pub served: Result<ServedModel, String>,
}

impl EbmAtStart {
    /// The energy scale `search` standardises energies with ([`ValueScorer::energy_scale`]):
    /// the served head's, when `ebm_normalize` is on and
    /// the head has usable figures; else None (raw energies), saying why when the value
    /// model counts (`ebm_weight > 0`).
    pub fn energy_scale(&self, search: &SearchConfig) -> Option<EnergyScale> {
        if !search.ebm_normalize {
            return None;
        }
        let counts = search.ebm_weight > 0.0;
        let raw = "the priority uses -energy / search.ebm_temperature";
        let served = match &self.served {
            Ok(served) => served,
            Err(why) => {
                if counts {
                    tracing::warn!(
                        "the EBM server {} reports no model identity ({why}); {raw}",
                        self.url
                    );
                }
                return None;
            }
        };
        match served.head.energy_scale {
            Some(scale) if scale.is_usable() => {
                tracing::info!(
                    mean = scale.mean,
                    std = scale.std,
                    "energies are standardised with the served head's scale"
                );
                Some(scale)
            }
            Some(scale) => {
                if counts {
                    tracing::warn!(
                        "the EBM server {} reports an unusable energy scale (mean {}, std {}); \
                         {raw}",
                        self.url,
                        scale.mean,
                        scale.std
                    );
                }
                None
            }
            None => {
                if counts {
                    tracing::warn!(
                        "the head the EBM server {} serves ({}) has no energy scale (trained \
                         before `ebm train` recorded one, a checkpoint, or energies that \
                         collapsed); {raw}",
                        self.url,
                        served
                            .head
                            .head_path
                            .as_deref()
                            .unwrap_or("no path reported")
                    );
                }
                None
            }
        }
    }
}

#[async_trait]
impl ValueScorer for EbmClient {
    fn energy_scale(&self) -> Option<EnergyScale> {
        self.energy_scale
    }

    /// `ebm serve` answers 500 for a whole request when one of its states fails even alone
    /// (a forward pass that errs, a non-finite energy: `ebm/src/server.rs`), so one bad state
    /// would end every theorem it appears in. Such a batch is scored again in halves until the
    /// bad states stand alone; they get `None`.
    async fn score(&self, states: &[String]) -> Result<Vec<Option<f64>>, ValueError> {
        if states.is_empty() {
            return Ok(Vec::new());
        }
        let scored = self.score_all(states, &self.retry).await;
        self.settle(states, scored).await
    }
}

impl EbmClient {
    async fn score_all(
        &self,
        states: &[String],
        retry: &RetryPolicy,
    ) -> Result<Vec<f64>, ValueError> {
        let request = ScoreRequest {
            states: states.to_vec(),
        };
        let answer: ScoreResponse = self.post_with("/score", &request, retry).await?;
        self.check_len("energies", answer.energies.len(), states.len())?;
        // The first state ever scored will do: the check only asks whether the server still
        // scores anything, so the hot path copies no text after the first call.
        self.scored_before
            .lock()
            .expect("scored_before lock")
            .get_or_insert_with(|| states[0].clone());
        Ok(answer.energies)
    }

    /// `states`' energies from their answer, bad states isolated when it was a 500.
    async fn settle(
        &self,
        states: &[String],
        scored: Result<Vec<f64>, ValueError>,
    ) -> Result<Vec<Option<f64>>, ValueError> {
        match scored {
            Ok(energies) => Ok(energies.into_iter().map(Some).collect()),
            Err(e) if fails_on_a_state(&e) => self.isolate(states, e).await,
            Err(e) => Err(e),
        }
    }

    /// Scores `states`, whose request failed with `error`, half by half, without retries
    /// (the server retried each failing state alone already). When both halves fail, a state
    /// the server scored before is asked again: if it fails too, the server fails everything
    /// and `error` stands.
    fn isolate<'a>(&'a self, states: &'a [String], error: ValueError) -> Scoring<'a> {
        Box::pin(async move {
            if let [state] = states {
                tracing::warn!(%error, chars = state.len(), "the value model cannot score a state; it is ranked by log-prob alone");
                return Ok(vec![None]);
            }
            let once = RetryPolicy {
                max_retries: 0,
                ..self.retry.clone()
            };
            let (a, b) = states.split_at(states.len() / 2);
            let scored_a = self.score_all(a, &once).await;
            let scored_b = self.score_all(b, &once).await;
            if scored_a.is_err() && scored_b.is_err() && !self.still_scores(&once).await {
                return Err(error);
            }
            let mut out = self.settle(a, scored_a).await?;
            out.extend(self.settle(b, scored_b).await?);
            Ok(out)
        })
    }

    /// Whether the server still scores a state it scored before (false when there is none).
    async fn still_scores(&self, retry: &RetryPolicy) -> bool {
        let before = self
            .scored_before
            .lock()
            .expect("scored_before lock")
            .clone();
        match before {
            Some(state) => self.score_all(&[state], retry).await.is_ok(),
            None => false,
        }
    }
}

type Scoring<'a> = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<Vec<Option<f64>>, ValueError>> + Send + 'a>,
>;

/// The server's answer for a request holding a state it cannot score: 500 on every attempt
/// (503 is a server still loading, 502/504 a proxy: not the state's fault).
fn fails_on_a_state(e: &ValueError) -> bool {
    matches!(
        e.0,
        HttpError::Unavailable {
            last_status: Some(500),
            ..
        }
    )
}

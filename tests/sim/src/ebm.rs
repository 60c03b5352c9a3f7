//! A simulated EBM server: a TEST DOUBLE, not a model. It speaks `stepwise ebm serve`'s HTTP
//! API (`POST /score {"states"}` -> `{"energies"}`, `GET /health` with [`identity`]) over loopback with a fixed
//! delay per request, so latency-model benchmarks and tests run the search's real EBM client
//! without candle. Energies are a deterministic function of the state text (shorter goals
//! score lower, i.e. look more provable), in [0, 1).

use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use formats::ebm_api::{ScoreRequest, ScoreResponse};
use formats::identity::{HealthResponse, ModelIdentity};
use tokio::sync::oneshot;

#[derive(Debug, Clone)]
pub struct EbmOptions {
    /// Where to listen; port 0 picks a free one.
    pub addr: SocketAddr,
    /// Added to every `/score` request.
    pub delay_per_request: Duration,
    /// States containing any of these cannot be scored: a request holding one gets the 500
    /// `ebm serve` gives when a state fails even alone (`ebm/src/server.rs`).
    pub unscorable: Vec<String>,
}

impl Default for EbmOptions {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            delay_per_request: Duration::ZERO,
            unscorable: Vec::new(),
        }
    }
}

/// A running server; dropping the handle stops it.
pub struct EbmHandle {
    pub addr: SocketAddr,
    _shutdown: oneshot::Sender<()>,
}

impl EbmHandle {
    /// `http://addr`, as `[ebm].url` wants it.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// The simulated energy of one state.
pub fn energy(state: &str) -> f64 {
    let mut h = DefaultHasher::new();
    state.hash(&mut h);
    let jitter = (h.finish() % 1000) as f64 / 10_000.0;
    (state.len() as f64 / (state.len() as f64 + 200.0)) * 0.9 + jitter
}

/// The model identity the simulated server reports on `/health`.
pub fn identity() -> ModelIdentity {
    ModelIdentity {
        config_sha256: "sim-config".into(),
        tokenizer_sha256: "sim-tokenizer".into(),
        dtype: "f32".into(),
        pooling: "mean".into(),
        head_sha256: Some("sim-head".into()),
    }
}

/// Binds `options.addr` and serves until the handle is dropped.
pub async fn spawn(options: EbmOptions) -> std::io::Result<EbmHandle> {
    let listener = tokio::net::TcpListener::bind(options.addr).await?;
    let addr = listener.local_addr()?;
    let app = Router::new()
        .route("/score", post(score))
        .route(
            "/health",
            get(|| async {
                Json(HealthResponse {
                    identity: identity(),
                })
            }),
        )
        .with_state(Arc::new(options));
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await;
        if let Err(e) = served {
            tracing::warn!("simulated EBM server stopped: {e}");
        }
    });
    Ok(EbmHandle {
        addr,
        _shutdown: tx,
    })
}

async fn score(
    State(options): State<Arc<EbmOptions>>,
    Json(request): Json<ScoreRequest>,
) -> Response {
    if !options.delay_per_request.is_zero() {
        tokio::time::sleep(options.delay_per_request).await;
    }
    let bad = request
        .states
        .iter()
        .position(|s| options.unscorable.iter().any(|u| s.contains(u.as_str())));
    if let Some(i) = bad {
        // `ebm serve`'s error body (`ApiError`) and its words for a non-finite energy.
        let body = serde_json::json!({
            "error": {"message": format!("the energy of states[{i}] is NaN"), "code": 500}
        });
        return (StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response();
    }
    Json(ScoreResponse {
        energies: request.states.iter().map(|s| energy(s)).collect(),
    })
    .into_response()
}

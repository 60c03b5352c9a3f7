//! The `/encode` + `/score` HTTP server (`stepwise ebm serve`).
//!
//! `POST /encode {"texts": [...]}` -> `{"embeddings": [[...], ...]}`,
//! `POST /score {"states": [...]}` -> `{"energies": [...]}` (lower = more provable),
//! `POST /head {"path": ...}` -> the `/health` body once that head is served, `GET /health`,
//! `GET /stats`. Errors are `{"error": {"message", "code"}}`: 400 for malformed JSON, an empty
//! text, `/score` without a head, or a head that cannot be loaded; 409 for a head made for
//! another encoder (its `train.json` records another model, or its width differs; the error
//! also carries both identities); 413 for a body or text count over the limits; 500 when a
//! text's forward pass fails even alone, or gives a non-finite number; 503 if the batcher has
//! stopped.
//!
//! `POST /head` swaps the head without reloading the encoder: the new one is loaded and
//! checked off the lock, then one `Arc` is replaced under it. `/score` takes the `Arc` once,
//! before it embeds, so a request in flight scores every state with the head it started with.
//!
//! A text longer than the limits is not refused: it is cut to its last `max_text_bytes`
//! bytes, then to BOS + its last tokens (`LlamaEncoder::tokenize_truncated`), since a goal's
//! target `⊢ …` comes last, and `/stats` counts it under `truncated`. One long state never
//! fails a search.
//!
//! An empty text is a 400, never an embedding: the state of a completed proof is `""` (no
//! goals), the search never scores it, and a constant embedding for it is what made training
//! and evaluation on terminal nodes flatter themselves. Clients leave terminal states out.

use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use candle_core::Tensor;
use formats::ebm_api::{EncodeRequest, EncodeResponse, HeadRequest, ScoreRequest, ScoreResponse};
use formats::identity::{HeadHealth, HealthResponse};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

use crate::batcher::{BatchLimits, BatchStats, Batcher, Job, Queues};
use crate::cache::{Embedding, EmbeddingCache};
use crate::error::{EbmError, Result};
use crate::forward_memory::{weight_bytes, worst_case_peak};
use crate::llama_encoder::LlamaEncoder;
use crate::served_head::ServedHead;

/// Per-request bounds, so one client cannot make the server allocate without limit.
#[derive(Clone, Debug)]
pub struct RequestLimits {
    /// Body size; larger is 413.
    pub max_body_bytes: usize,
    /// Texts in one request; more is 413.
    pub max_texts: usize,
    /// Bytes of one text; a longer one keeps its last bytes (at a character boundary).
    pub max_text_bytes: usize,
    /// Tokens of one text; a longer one keeps BOS and its last tokens.
    pub max_text_tokens: usize,
}

impl Default for RequestLimits {
    fn default() -> Self {
        RequestLimits {
            max_body_bytes: 32 << 20,
            max_texts: 4096,
            max_text_bytes: 64 << 10,
            max_text_tokens: 8192,
        }
    }
}

#[derive(Clone, Debug)]
pub struct ServerOptions {
    pub batch: BatchLimits,
    /// Embeddings kept in the LRU cache; 0 turns it off.
    pub cache_size: usize,
    pub limits: RequestLimits,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            batch: BatchLimits {
                linger: std::time::Duration::from_millis(5),
                max_batch: 64,
                max_batch_tokens: 32768,
                max_batch_square_tokens: 4 * 8192 * 8192,
            },
            cache_size: 50_000,
            limits: RequestLimits::default(),
        }
    }
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    texts: AtomicU64,
    cache_hits: AtomicU64,
    cache_misses: AtomicU64,
    truncated: AtomicU64,
}

struct AppState {
    encoder: Arc<LlamaEncoder>,
    /// Replaced whole by `POST /head`; held only to clone the `Arc`.
    head: RwLock<Option<Arc<ServedHead>>>,
    /// Encoder outputs only, keyed by text: a head swap leaves every entry valid.
    cache: Arc<EmbeddingCache>,
    score_queue: mpsc::Sender<Job>,
    encode_queue: mpsc::Sender<Job>,
    batch_stats: Arc<Mutex<BatchStats>>,
    counters: Counters,
    limits: RequestLimits,
}

/// A built server: the router plus its running batcher task.
pub struct EbmServer {
    router: Router,
}

impl EbmServer {
    /// Starts the batcher (call inside a tokio runtime). The head's input width must match
    /// the encoder's hidden size.
    pub fn new(
        encoder: Arc<LlamaEncoder>,
        head: Option<ServedHead>,
        options: ServerOptions,
    ) -> Result<Self> {
        if let Some(h) = &head {
            h.check_fits(&encoder)?;
        }
        let mut batch = options.batch.clone();
        batch.max_batch = batch.max_batch.max(1);
        // A single text must always fit a batch of its own.
        let longest = options.limits.max_text_tokens;
        batch.max_batch_tokens = batch.max_batch_tokens.max(longest);
        batch.max_batch_square_tokens = batch
            .max_batch_square_tokens
            .max(longest.saturating_mul(longest));
        let (peak, b, t) = worst_case_peak(
            encoder.config(),
            encoder.dtype(),
            batch.max_batch,
            batch.max_batch_tokens,
            batch.max_batch_square_tokens,
            longest,
            encoder.attention_budget(),
        );
        tracing::info!(
            peak_gib = peak.peak_bytes as f64 / (1u64 << 30) as f64,
            weights_gib =
                weight_bytes(encoder.config(), encoder.dtype()) as f64 / (1u64 << 30) as f64,
            batch = b,
            tokens = t,
            heads_per_chunk = peak.heads_per_chunk,
            "largest forward pass these limits allow (activations beyond the weights)"
        );
        let cache = Arc::new(EmbeddingCache::new(options.cache_size));
        let batch_stats = Arc::new(Mutex::new(BatchStats::default()));
        let (score_tx, score_rx) = mpsc::channel(batch.max_batch * 64);
        let (encode_tx, encode_rx) = mpsc::channel(batch.max_batch * 64);
        let batcher = Batcher::new(
            Queues {
                score: score_rx,
                encode: encode_rx,
            },
            Arc::clone(&encoder),
            Arc::clone(&cache),
            Arc::clone(&batch_stats),
            batch,
        );
        tokio::spawn(batcher.run());
        let state = Arc::new(AppState {
            encoder,
            head: RwLock::new(head.map(Arc::new)),
            cache,
            score_queue: score_tx,
            encode_queue: encode_tx,
            batch_stats,
            counters: Counters::default(),
            limits: options.limits.clone(),
        });
        let router = Router::new()
            .route("/encode", post(encode))
            .route("/score", post(score))
            .route("/head", post(swap_head))
            .route("/health", get(health))
            .route("/stats", get(stats))
            .layer(DefaultBodyLimit::max(options.limits.max_body_bytes))
            .with_state(state);
        Ok(EbmServer { router })
    }

    pub fn router(&self) -> Router {
        self.router.clone()
    }

    /// Serves on `listener` until `shutdown` resolves.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        axum::serve(listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await
    }
}

struct ApiError {
    status: StatusCode,
    message: String,
    /// More fields of the `error` object, for a client to read what the message says.
    details: serde_json::Map<String, serde_json::Value>,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            details: serde_json::Map::new(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = self.details;
        error.insert("message".into(), self.message.into());
        error.insert("code".into(), self.status.as_u16().into());
        (self.status, Json(serde_json::json!({ "error": error }))).into_response()
    }
}

/// Reads a JSON body: 413 past the body limit, 400 naming what is wrong otherwise.
fn parse_body<T: DeserializeOwned>(
    body: std::result::Result<Bytes, BytesRejection>,
) -> std::result::Result<T, ApiError> {
    let bytes = body.map_err(|r| ApiError::new(r.status(), r.body_text()))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("invalid JSON body: {e}")))
}

async fn encode(
    State(state): State<Arc<AppState>>,
    body: std::result::Result<Bytes, BytesRejection>,
) -> std::result::Result<Response, ApiError> {
    state.counters.requests.fetch_add(1, Ordering::Relaxed);
    let req: EncodeRequest = parse_body(body)?;
    let embeddings = embed(&state, req.texts, "texts", &state.encode_queue).await?;
    let body = EncodeResponse {
        embeddings: embeddings.iter().map(|e| e.to_vec()).collect(),
    };
    Ok(Json(body).into_response())
}

async fn score(
    State(state): State<Arc<AppState>>,
    body: std::result::Result<Bytes, BytesRejection>,
) -> std::result::Result<Json<ScoreResponse>, ApiError> {
    state.counters.requests.fetch_add(1, Ordering::Relaxed);
    let req: ScoreRequest = parse_body(body)?;
    // Taken once: a swap while this request waits for its embeddings does not reach it.
    let Some(head) = state.current_head() else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "no energy head loaded: start the server with --head FILE, or POST /head, to use \
             /score (/encode works)",
        ));
    };
    let embeddings = embed(&state, req.states, "states", &state.score_queue).await?;
    if embeddings.is_empty() {
        return Ok(Json(ScoreResponse { energies: vec![] }));
    }
    let device = state.encoder.device().clone();
    let dim = state.encoder.hidden_size();
    let energies = tokio::task::spawn_blocking(move || -> Result<Vec<f32>> {
        let flat: Vec<f32> = embeddings.iter().flat_map(|e| e.iter().copied()).collect();
        let x = Tensor::from_vec(flat, (embeddings.len(), dim), &device)?;
        Ok(head.head().forward(&x, false)?.to_vec1::<f32>()?)
    })
    .await
    .map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("head task failed: {e}"),
        )
    })?
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    // JSON has no NaN (serde would write null); a non-finite energy is an error.
    if let Some(i) = energies.iter().position(|e| !e.is_finite()) {
        return Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the energy of states[{i}] is {}", energies[i]),
        ));
    }
    Ok(Json(ScoreResponse {
        energies: energies.into_iter().map(f64::from).collect(),
    }))
}

/// The last `max` bytes of `text`, starting at a character boundary.
fn last_bytes(text: &str, max: usize) -> &str {
    let mut start = text.len().saturating_sub(max);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

/// Embeddings for `texts` in order: cache hits directly, misses through `queue`.
async fn embed(
    state: &AppState,
    texts: Vec<String>,
    field: &str,
    queue: &mpsc::Sender<Job>,
) -> std::result::Result<Vec<Embedding>, ApiError> {
    let limits = &state.limits;
    if texts.len() > limits.max_texts {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "{} {field} in one request; the limit is {}",
                texts.len(),
                limits.max_texts
            ),
        ));
    }
    if let Some(i) = texts.iter().position(|t| t.is_empty()) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "{field}[{i}] is empty: that is the state of a completed proof (no goals), \
                 which is never scored or embedded; leave terminal states out"
            ),
        ));
    }
    state
        .counters
        .texts
        .fetch_add(texts.len() as u64, Ordering::Relaxed);

    enum Slot {
        Ready(Embedding),
        Waiting(oneshot::Receiver<std::result::Result<Embedding, String>>),
    }
    let mut slots = Vec::with_capacity(texts.len());
    let mut pending = Vec::new();
    for (i, text) in texts.into_iter().enumerate() {
        if let Some(e) = state.cache.get(&text) {
            state.counters.cache_hits.fetch_add(1, Ordering::Relaxed);
            slots.push(Slot::Ready(e));
            continue;
        }
        state.counters.cache_misses.fetch_add(1, Ordering::Relaxed);
        let kept = last_bytes(&text, limits.max_text_bytes);
        let tokens = state
            .encoder
            .tokenize_truncated(kept, limits.max_text_tokens)
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("{field}[{i}]: {e}")))?;
        if tokens.ids.is_empty() {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("{field}[{i}] has no tokens"),
            ));
        }
        if tokens.truncated || kept.len() < text.len() {
            state.counters.truncated.fetch_add(1, Ordering::Relaxed);
        }
        let (reply, rx) = oneshot::channel();
        pending.push(Job {
            text,
            ids: tokens.ids,
            enqueued: Instant::now(),
            reply,
        });
        slots.push(Slot::Waiting(rx));
    }
    let stopped = || ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "the batcher has stopped");
    for job in pending {
        queue.send(job).await.map_err(|_| stopped())?;
    }
    let mut out = Vec::with_capacity(slots.len());
    for slot in slots {
        out.push(match slot {
            Slot::Ready(e) => e,
            Slot::Waiting(rx) => rx
                .await
                .map_err(|_| stopped())?
                .map_err(|m| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, m))?,
        });
    }
    Ok(out)
}

impl AppState {
    fn current_head(&self) -> Option<Arc<ServedHead>> {
        self.head.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// The body of `GET /health` (and of `POST /head`'s answer): `status`, the encoder's width,
/// whether `/score` works, `formats::identity::HealthResponse` (the identity, with the head's
/// hash when one is loaded) and `formats::identity::HeadHealth` (its file and energy scale).
#[derive(Serialize)]
struct Health {
    status: &'static str,
    hidden_size: usize,
    head: bool,
    #[serde(flatten)]
    response: HealthResponse,
    #[serde(flatten)]
    served_head: HeadHealth,
}

impl Health {
    fn new(encoder: &LlamaEncoder, head: Option<&ServedHead>) -> Self {
        let mut identity = encoder.identity().clone();
        identity.head_sha256 = head.and_then(|h| h.head().weights_sha256().map(str::to_string));
        Health {
            status: "ok",
            hidden_size: encoder.hidden_size(),
            head: head.is_some(),
            response: HealthResponse { identity },
            served_head: head.map(ServedHead::health).unwrap_or_default(),
        }
    }
}

async fn health(State(state): State<Arc<AppState>>) -> Json<Health> {
    Json(Health::new(&state.encoder, state.current_head().as_deref()))
}

/// `POST /head`: loads and checks the head off the lock (reading weights takes a while and
/// must not hold up `/score`), then swaps it in. The embedding cache holds encoder outputs
/// only, so it stays valid. The answer describes the head this request installed, even if
/// another swap follows at once.
async fn swap_head(
    State(state): State<Arc<AppState>>,
    body: std::result::Result<Bytes, BytesRejection>,
) -> std::result::Result<Json<Health>, ApiError> {
    let req: HeadRequest = parse_body(body)?;
    let encoder = Arc::clone(&state.encoder);
    let path = PathBuf::from(&req.path);
    let loaded = tokio::task::spawn_blocking(move || ServedHead::load(&path, &encoder))
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("head loading task failed: {e}"),
            )
        })?;
    let served = Arc::new(loaded.map_err(|e| head_refused(&req.path, e))?);
    let previous = state
        .head
        .write()
        .unwrap_or_else(|p| p.into_inner())
        .replace(Arc::clone(&served));
    let sha = |h: Option<&ServedHead>| {
        h.and_then(|h| h.head().weights_sha256().map(str::to_string))
            .unwrap_or_else(|| "none".into())
    };
    tracing::info!(
        path = req.path,
        head_sha256 = sha(Some(&served)),
        previous_sha256 = sha(previous.as_deref()),
        energy_scale = ?served.energy_scale(),
        "serving another head"
    );
    Ok(Json(Health::new(&state.encoder, Some(&served))))
}

/// 409 for a head made for another encoder, naming both identities (also as fields); 400 for
/// one that cannot be read. Either way the served head stays.
fn head_refused(path: &str, error: EbmError) -> ApiError {
    let message = format!("head {path} refused, the served head stays: {error}");
    match error {
        EbmError::OtherModel {
            recorded_in,
            trained,
            other,
            ..
        } => {
            let mut e = ApiError::new(StatusCode::CONFLICT, message);
            e.details.extend([
                (
                    "recorded_in".to_string(),
                    recorded_in.display().to_string().into(),
                ),
                ("head_identity".to_string(), serde_json::json!(trained)),
                ("served_identity".to_string(), serde_json::json!(other)),
            ]);
            e
        }
        EbmError::HeadWidth { .. } => ApiError::new(StatusCode::CONFLICT, message),
        _ => ApiError::new(StatusCode::BAD_REQUEST, message),
    }
}

/// Served by `GET /stats`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Stats {
    /// HTTP requests to /encode and /score.
    pub requests: u64,
    pub texts: u64,
    pub cache_hits: u64,
    pub cache_misses: u64,
    pub cache_entries: usize,
    /// Texts cut to the byte or token limit (BOS + last tokens kept).
    pub truncated: u64,
    /// Forward passes, retried halves included.
    pub batches: u64,
    /// Of those, for `/score`.
    pub score_batches: u64,
    pub failed_batches: u64,
    /// Texts that failed even alone (their requests got a 500).
    pub failed_texts: u64,
    pub mean_batch_size: f64,
    pub queue_wait_p50_ms: Option<f64>,
    pub queue_wait_p95_ms: Option<f64>,
}

async fn stats(State(state): State<Arc<AppState>>) -> Json<Stats> {
    let c = &state.counters;
    let b = state.batch_stats.lock().unwrap_or_else(|p| p.into_inner());
    Json(Stats {
        requests: c.requests.load(Ordering::Relaxed),
        texts: c.texts.load(Ordering::Relaxed),
        cache_hits: c.cache_hits.load(Ordering::Relaxed),
        cache_misses: c.cache_misses.load(Ordering::Relaxed),
        cache_entries: state.cache.len(),
        truncated: c.truncated.load(Ordering::Relaxed),
        batches: b.batches,
        score_batches: b.score_batches,
        failed_batches: b.failed_batches,
        failed_texts: b.failed_texts,
        mean_batch_size: if b.batches == 0 {
            0.0
        } else {
            b.batched_texts as f64 / b.batches as f64
        },
        queue_wait_p50_ms: b.wait_quantile(0.5),
        queue_wait_p95_ms: b.wait_quantile(0.95),
    })
}

//! The set of policy servers one client spreads its requests over (one SGLang per GPU, or a
//! router), with failover: a server that just failed is skipped while another is healthy.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

use super::utilisation::Timeline;
use super::PolicyError;
use crate::config::PolicyConfig;
use crate::http_retry::{get_json, post_json, probe, HttpError, RetryPolicy};
use formats::progress::InFlightStep;
use formats::utilisation::UrlUtilisation;

/// How long a server that exhausted its retries is passed over in favour of healthy ones.
const COOLDOWN: Duration = Duration::from_secs(30);
const HEALTH_TIMEOUT: Duration = Duration::from_secs(5);
/// Pooled connections are dropped after this long idle: below uvicorn's keep-alive in
/// SGLang (`SGLANG_TIMEOUT_KEEP_ALIVE`, 5 s, `http_server.py`), so the client never sends on
/// a connection the server is closing.
const POOL_IDLE: Duration = Duration::from_secs(3);
/// Between two looks at a server that is still loading.
const LOADING_POLL: Duration = Duration::from_millis(500);
/// How often the wait for a loading server says so again.
const LOADING_NOTICE: Duration = Duration::from_secs(30);

/// What a server says about itself, read once at start.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ServedModel {
    /// `GET /v1/models` ids, in the server's order (vLLM: `--served-model-name`).
    pub ids: Vec<String>,
    /// The context in tokens: `/v1/models` `max_model_len` (vLLM; SGLang lists it too), else
    /// a context field of SGLang's `/get_model_info`.
    pub context_tokens: Option<u32>,
    /// SGLang's `/get_model_info` `model_path`, when it answered.
    pub model_path: Option<String>,
}

pub(crate) struct Endpoints {
    client: reqwest::Client,
    /// Base URLs without a trailing slash.
    urls: Vec<String>,
    next: AtomicUsize,
    /// Per URL: skipped until this instant (unless every server is marked).
    down_until: Mutex<Vec<Option<Instant>>>,
    retry: RetryPolicy,
    timeline: Timeline,
    /// How long [`Self::health_check`] waits for servers that are still loading.
    startup_timeout: Duration,
    served: tokio::sync::OnceCell<ServedModel>,
}

impl Endpoints {
    pub(crate) fn new(config: &PolicyConfig) -> Result<Self, PolicyError> {
        if config.urls.is_empty() {
            return Err(PolicyError::Config(
                "urls must name at least one server".into(),
            ));
        }
        let mut urls = Vec::with_capacity(config.urls.len());
        for url in &config.urls {
            let url = url.trim().trim_end_matches('/');
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(PolicyError::Config(format!(
                    "url `{url}` must start with http:// or https://"
                )));
            }
            urls.push(url.to_owned());
        }
        let client = reqwest::Client::builder()
            .pool_idle_timeout(POOL_IDLE)
            .build()
            .map_err(|e| PolicyError::Config(format!("cannot build HTTP client: {e}")))?;
        Ok(Self {
            client,
            timeline: Timeline::new(&urls),
            down_until: Mutex::new(vec![None; urls.len()]),
            urls,
            next: AtomicUsize::new(0),
            retry: RetryPolicy::new(config.max_retries, config.request_timeout),
            startup_timeout: Duration::from_secs_f64(config.startup_timeout.max(0.0)),
            served: tokio::sync::OnceCell::new(),
        })
    }

    /// Servers in the order to try them for one request: round-robin from the next one,
    /// servers in their cooldown moved to the back.
    fn order(&self) -> Vec<usize> {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let down = self.down_until.lock().expect("down_until lock");
        let (mut healthy, cooling): (Vec<usize>, Vec<usize>) = (0..self.urls.len())
            .map(|k| (start + k) % self.urls.len())
            .partition(|&i| down[i].is_none_or(|t| t <= now));
        healthy.extend(cooling);
        healthy
    }

    fn mark(&self, i: usize, until: Option<Instant>) {
        self.down_until.lock().expect("down_until lock")[i] = until;
    }

    /// POSTs `body` (carrying `prompts` prompts, for the utilisation timeline) to `path` on one
    /// server and reads the JSON answer with `parse`; a server still unavailable after its
    /// retries hands the request to the next one. Rejections and unreadable answers are not
    /// failed over: every server would answer the same.
    pub(crate) async fn post<B, R>(
        &self,
        path: &str,
        body: &B,
        prompts: usize,
        parse: impl Fn(Value) -> Result<R, String>,
    ) -> Result<R, PolicyError>
    where
        B: Serialize + ?Sized,
    {
        let mut last = None;
        for i in self.order() {
            let url = format!("{}{path}", self.urls[i]);
            // Retries and their backoff count as in flight: the client is waiting on this server.
            let in_flight = self.timeline.begin(i, prompts as u64);
            let answer = post_json(&self.client, &url, body, &self.retry).await;
            drop(in_flight);
            match answer {
                Ok(answer) => {
                    self.mark(i, None);
                    return parse(answer)
                        .map_err(|message| HttpError::BadResponse { url, message }.into());
                }
                Err(e @ HttpError::Unavailable { .. }) => {
                    tracing::warn!(url, error = %e, "policy server unavailable; trying the next one");
                    self.mark(i, Some(Instant::now() + COOLDOWN));
                    last = Some(e.into());
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(last.expect("at least one url"))
    }

    /// How many servers requests are spread over.
    pub(crate) fn server_count(&self) -> usize {
        self.urls.len()
    }

    /// POSTs `body` to `path` on server `index` once: no retry, no failover, not on the
    /// timeline (a start-up probe, not a request of the search).
    pub(crate) async fn post_once<B>(
        &self,
        index: usize,
        path: &str,
        body: &B,
    ) -> Result<Value, HttpError>
    where
        B: Serialize + ?Sized,
    {
        let once = RetryPolicy {
            max_retries: 0,
            ..self.retry.clone()
        };
        post_json(
            &self.client,
            &format!("{}{path}", self.urls[index]),
            body,
            &once,
        )
        .await
    }

    /// Per server, the request timeline's counters so far.
    pub(crate) fn utilisation(&self) -> Vec<UrlUtilisation> {
        self.timeline.snapshot()
    }

    /// Per server, the request timeline's changes of level (see [`Timeline::drain_steps`]).
    pub(crate) fn drain_in_flight_steps(&self, keep_recording: bool) -> Vec<InFlightStep> {
        self.timeline.drain_steps(keep_recording)
    }

    /// `GET /health` on every server (one after the other; a refused port answers at once).
    /// A server that refuses connections or answers 503, as SGLang does while it loads the
    /// model, is waited for until `startup_timeout` has passed, with a log line saying so;
    /// `Down` then lists each one that does not answer 2xx, with the reason.
    pub(crate) async fn health_check(&self) -> Result<(), PolicyError> {
        let deadline = Instant::now() + self.startup_timeout;
        let mut down = Vec::new();
        for base in &self.urls {
            let url = format!("{base}/health");
            let mut next_notice = Instant::now();
            loop {
                match probe(&self.client, &url, HEALTH_TIMEOUT).await {
                    Ok(()) => break,
                    Err(e) if e.loading && Instant::now() < deadline => {
                        let now = Instant::now();
                        if now >= next_notice {
                            tracing::warn!(
                                "policy server {base} is not ready ({e}): waiting up to {:.0} s \
                                 more for it to load the model (policy.startup_timeout)",
                                (deadline - now).as_secs_f64()
                            );
                            next_notice = now + LOADING_NOTICE;
                        }
                        tokio::time::sleep(LOADING_POLL.min(deadline - now)).await;
                    }
                    Err(e) if e.loading => {
                        down.push((
                            base.clone(),
                            format!(
                                "{e}; still not ready after {:.0} s (policy.startup_timeout)",
                                self.startup_timeout.as_secs_f64()
                            ),
                        ));
                        break;
                    }
                    Err(e) => {
                        down.push((base.clone(), e.to_string()));
                        break;
                    }
                }
            }
        }
        if down.is_empty() {
            Ok(())
        } else {
            Err(PolicyError::Down { down })
        }
    }

    /// What the first server says about the model it serves (all servers of one config serve
    /// the same model), asked once. Each source that does not answer is skipped; `Err` only
    /// when none did.
    pub(crate) async fn served_model(&self) -> Result<&ServedModel, PolicyError> {
        self.served
            .get_or_try_init(|| self.ask_served_model())
            .await
    }

    /// The context the server reported, once [`Self::served_model`] has asked.
    pub(crate) fn known_context(&self) -> Option<u32> {
        self.served.get().and_then(|s| s.context_tokens)
    }

    async fn ask_served_model(&self) -> Result<ServedModel, PolicyError> {
        let base = &self.urls[0];
        let mut served = ServedModel::default();
        let models =
            get_json::<Value>(&self.client, &format!("{base}/v1/models"), HEALTH_TIMEOUT).await;
        let info = get_json::<Value>(
            &self.client,
            &format!("{base}/get_model_info"),
            HEALTH_TIMEOUT,
        )
        .await;
        if let Ok(list) = &models {
            let cards = list.get("data").and_then(Value::as_array);
            for card in cards.into_iter().flatten() {
                if let Some(id) = card.get("id").and_then(Value::as_str) {
                    served.ids.push(id.to_owned());
                }
                served.context_tokens = served.context_tokens.or_else(|| context_of(card));
            }
        }
        if let Ok(info) = &info {
            served.model_path = info
                .get("model_path")
                .and_then(Value::as_str)
                .map(str::to_owned);
            served.context_tokens = served.context_tokens.or_else(|| context_of(info));
        }
        match (models, info) {
            (Err(models), Err(info)) => Err(HttpError::BadResponse {
                url: base.clone(),
                message: format!(
                    "neither GET /v1/models ({models}) nor GET /get_model_info ({info}) answered"
                ),
            }
            .into()),
            _ => Ok(served),
        }
    }
}

/// A context length in tokens under any of the names servers use for it.
fn context_of(object: &Value) -> Option<u32> {
    [
        "max_model_len",
        "context_length",
        "max_context_length",
        "context_len",
    ]
    .iter()
    .find_map(|key| object.get(*key).and_then(Value::as_u64))
    .and_then(|n| u32::try_from(n).ok())
}

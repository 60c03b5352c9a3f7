//! The set of policy servers one client spreads its requests over (one SGLang per GPU, or a
//! router), with failover: a server that just failed is skipped while another is healthy.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

use super::utilisation::{Timeline, UrlUtilisation};
use super::PolicyError;
use crate::config::PolicyConfig;
use crate::http_retry::{post_json, probe, HttpError, RetryPolicy};

/// How long a server that exhausted its retries is passed over in favour of healthy ones.
const COOLDOWN: Duration = Duration::from_secs(30);
const HEALTH_TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) struct Endpoints {
    client: reqwest::Client,
    /// Base URLs without a trailing slash.
    urls: Vec<String>,
    next: AtomicUsize,
    /// Per URL: skipped until this instant (unless every server is marked).
    down_until: Mutex<Vec<Option<Instant>>>,
    retry: RetryPolicy,
    timeline: Timeline,
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
            .build()
            .map_err(|e| PolicyError::Config(format!("cannot build HTTP client: {e}")))?;
        Ok(Self {
            client,
            timeline: Timeline::new(&urls),
            down_until: Mutex::new(vec![None; urls.len()]),
            urls,
            next: AtomicUsize::new(0),
            retry: RetryPolicy::new(config.max_retries, config.request_timeout),
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
                        .map_err(|message| PolicyError::BadResponse { url, message });
                }
                Err(e @ HttpError::Unavailable { .. }) => {
                    tracing::warn!(url, error = %e, "policy server unavailable; trying the next one");
                    self.mark(i, Some(Instant::now() + COOLDOWN));
                    last = Some(PolicyError::from_http(&url, e));
                }
                Err(e) => return Err(PolicyError::from_http(&url, e)),
            }
        }
        Err(last.expect("at least one url"))
    }

    /// Per server, the request timeline's counters so far.
    pub(crate) fn utilisation(&self) -> Vec<UrlUtilisation> {
        self.timeline.snapshot()
    }

    /// `GET /health` on every server (one after the other; a refused port answers at once);
    /// `Down` lists each one that does not answer 2xx, with the reason.
    pub(crate) async fn health_check(&self) -> Result<(), PolicyError> {
        let mut down = Vec::new();
        for base in &self.urls {
            if let Err(why) = probe(&self.client, &format!("{base}/health"), HEALTH_TIMEOUT).await {
                down.push((base.clone(), why));
            }
        }
        if down.is_empty() {
            Ok(())
        } else {
            Err(PolicyError::Down { down })
        }
    }
}

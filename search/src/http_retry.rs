//! The one way stepwise POSTs JSON to a model server (SGLang, vLLM, the EBM server).
//!
//! Model servers fail transiently all the time (503 while SGLang loads weights, 429 under
//! load, a connection reset when a GPU process restarts), so those are retried with
//! exponential backoff and jitter. Every other 4xx is a bug in the request: retrying cannot
//! help, so it fails at once with the server's own message.

use std::time::Duration;

use rand::Rng;
use reqwest::StatusCode;
use serde::{de::DeserializeOwned, Serialize};

/// How long one attempt may take and how often to try again.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// Per attempt.
    pub timeout: Duration,
    /// Delay before the first retry; doubles on each further one.
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl RetryPolicy {
    /// `timeout_secs` as in the config files (`request_timeout`).
    pub fn new(max_retries: u32, timeout_secs: f64) -> Self {
        Self {
            max_retries,
            timeout: Duration::from_secs_f64(timeout_secs.max(0.001)),
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(10),
        }
    }

    /// Exponential backoff with "equal jitter": uniform in `[d/2, d]` for `d = base * 2^retry`,
    /// so clients that failed together do not come back together.
    fn backoff(&self, retry: u32) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(1u32.checked_shl(retry.min(20)).unwrap_or(u32::MAX));
        let d = exp.min(self.max_delay);
        let half = d / 2;
        half + half.mul_f64(rand::rng().random_range(0.0..=1.0))
    }
}

/// Why a request to a model server failed, with the URL it went to. The clients' own errors
/// (`PolicyError`, `ValueError`) carry it as it is and only name whose server it was.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HttpError {
    /// A 4xx other than 429: the request itself is wrong.
    #[error("{url} rejected the request ({status}): {message}")]
    Rejected {
        url: String,
        status: u16,
        message: String,
    },
    /// Connection errors, timeouts, 429 and 5xx still failing after every retry.
    #[error("{url} unavailable after {attempts} attempts: {last_error}")]
    Unavailable {
        url: String,
        attempts: u32,
        last_error: String,
        /// The last attempt's HTTP status, when the server answered one.
        last_status: Option<u16>,
    },
    /// 200 with a body that is not the JSON we expect.
    #[error("{url} sent an unexpected response: {message}")]
    BadResponse { url: String, message: String },
}

/// POSTs `body` as JSON to `url` and decodes the JSON answer, retrying per `policy`.
pub async fn post_json<B, T>(
    client: &reqwest::Client,
    url: &str,
    body: &B,
    policy: &RetryPolicy,
) -> Result<T, HttpError>
where
    B: Serialize + ?Sized,
    T: DeserializeOwned,
{
    let attempts = policy.max_retries + 1;
    let mut last_error = String::new();
    let mut last_status = None;
    // The server's `Retry-After`, when it sent one, lengthens (never shortens) the backoff.
    let mut server_wait = None;
    for attempt in 0..attempts {
        if attempt > 0 {
            let backoff = policy.backoff(attempt - 1);
            let wait = server_wait
                .take()
                .map_or(backoff, |w: Duration| w.min(policy.max_delay).max(backoff));
            tokio::time::sleep(wait).await;
        }
        let sent = client
            .post(url)
            .json(body)
            .timeout(policy.timeout)
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(e) => {
                last_error = describe_reqwest_error(&e);
                last_status = None;
                tracing::warn!(url, attempt, error = %last_error, "request failed; retrying");
                continue;
            }
        };
        let status = response.status();
        last_status = Some(status.as_u16());
        server_wait = retry_after(&response);
        let bytes = match response.bytes().await {
            Ok(b) => b,
            Err(e) => {
                last_error = describe_reqwest_error(&e);
                tracing::warn!(url, attempt, error = %last_error, "reading response failed; retrying");
                continue;
            }
        };
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|e| HttpError::BadResponse {
                url: url.to_owned(),
                message: format!("{e} in {}", excerpt(&String::from_utf8_lossy(&bytes))),
            });
        }
        let message = server_message(&String::from_utf8_lossy(&bytes));
        if !is_retryable(status) {
            return Err(HttpError::Rejected {
                url: url.to_owned(),
                status: status.as_u16(),
                message,
            });
        }
        last_error = format!("HTTP {}: {message}", status.as_u16());
        tracing::warn!(url, attempt, error = %last_error, "server busy or failing; retrying");
    }
    Err(HttpError::Unavailable {
        url: url.to_owned(),
        attempts,
        last_error,
        last_status,
    })
}

/// Why a GET did not answer 2xx.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ProbeError {
    pub message: String,
    /// The server is (probably) still starting: the port refuses connections (nothing bound
    /// yet) or it answers 503 (SGLang's `/health` while `server_status` is `Starting`,
    /// `http_server.py`). Worth waiting for, unlike a 404 or a wrong host.
    pub loading: bool,
}

/// One GET without retries, for health checks: Ok on 2xx, else why not.
pub async fn probe(
    client: &reqwest::Client,
    url: &str,
    timeout: Duration,
) -> Result<(), ProbeError> {
    get_body(client, url, timeout).await.map(drop)
}

async fn get_body(
    client: &reqwest::Client,
    url: &str,
    timeout: Duration,
) -> Result<Vec<u8>, ProbeError> {
    let response = client
        .get(url)
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| ProbeError {
            message: describe_reqwest_error(&e),
            loading: e.is_connect(),
        })?;
    let status = response.status();
    let body = response.bytes().await.map_err(|e| ProbeError {
        message: describe_reqwest_error(&e),
        loading: false,
    })?;
    if status.is_success() {
        return Ok(body.to_vec());
    }
    Err(ProbeError {
        message: format!(
            "HTTP {}: {}",
            status.as_u16(),
            server_message(&String::from_utf8_lossy(&body))
        ),
        loading: status == StatusCode::SERVICE_UNAVAILABLE,
    })
}

/// `GET url` once and parse its JSON body: Err says why not (unreachable, status, body).
pub async fn get_json<T: DeserializeOwned>(
    client: &reqwest::Client,
    url: &str,
    timeout: Duration,
) -> Result<T, String> {
    let body = get_body(client, url, timeout)
        .await
        .map_err(|e| e.message)?;
    serde_json::from_slice(&body).map_err(|e| {
        format!(
            "unexpected body ({e}): {}",
            excerpt(&String::from_utf8_lossy(&body))
        )
    })
}

fn is_retryable(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

/// `Retry-After` in seconds, when the server sent one.
fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    let value = response.headers().get(reqwest::header::RETRY_AFTER)?;
    let secs: f64 = value.to_str().ok()?.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs))
}

/// reqwest's Display hides the cause ("error sending request"); the chain says "connection
/// refused" or "timed out", which is what a user needs.
fn describe_reqwest_error(e: &reqwest::Error) -> String {
    let mut text = if e.is_timeout() {
        "timed out".to_owned()
    } else {
        e.to_string()
    };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

/// The human message inside an error body: OpenAI's `{"error": {"message"}}`, SGLang's
/// `{"object": "error", "message", "code"}`, FastAPI's `{"detail"}`, or the text itself.
pub fn server_message(body: &str) -> String {
    if let Ok(json) = serde_json::from_str::<serde_json::Value>(body) {
        let found = json
            .pointer("/error/message")
            .or_else(|| json.get("message"))
            .or_else(|| json.get("error"))
            .or_else(|| json.get("detail"));
        match found {
            Some(serde_json::Value::String(s)) => return s.clone(),
            Some(other) if !other.is_null() => return other.to_string(),
            _ => {}
        }
    }
    let text = body.trim();
    if text.is_empty() {
        "(empty body)".to_owned()
    } else {
        excerpt(text)
    }
}

/// At most 500 characters, so a stray HTML page does not flood the log.
fn excerpt(text: &str) -> String {
    const MAX: usize = 500;
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_message_reads_every_error_shape() {
        assert_eq!(
            server_message(r#"{"error": {"message": "bad top_p", "type": "invalid"}}"#),
            "bad top_p"
        );
        assert_eq!(
            server_message(r#"{"object": "error", "message": "too long", "code": 400}"#),
            "too long"
        );
        assert_eq!(server_message(r#"{"detail": "Not Found"}"#), "Not Found");
        assert_eq!(server_message("  plain words \n"), "plain words");
        assert_eq!(server_message(""), "(empty body)");
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy::new(10, 1.0);
        for retry in 0..30 {
            let d = p.backoff(retry);
            let full = (p.base_delay * 2u32.pow(retry.min(20))).min(p.max_delay);
            assert!(
                d >= full / 2 && d <= full,
                "retry {retry}: {d:?} vs {full:?}"
            );
        }
    }
}

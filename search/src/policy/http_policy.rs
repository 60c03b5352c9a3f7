//! The one [`Policy`] over HTTP. SGLang's native `/generate` and the OpenAI `/v1/completions`
//! share everything but the wire: the sampling settings, prompts fitted to the context,
//! failover over `[policy].urls`, the start-up check. What differs, the request body and the
//! answer, is a [`WireFormat`] (`sglang.rs`, `openai.rs`).

use std::marker::PhantomData;

use async_trait::async_trait;
use serde::Serialize;
use serde_json::Value;

use super::endpoints::Endpoints;
use super::{Completion, Policy, PolicyError};
use crate::bos::PromptToken;
use crate::config::{PolicyConfig, Sampling};
use crate::http_retry::HttpError;
use crate::request_setup::RequestSetup;
use formats::progress::InFlightStep;
use formats::utilisation::UrlUtilisation;

/// One generate API's request body and answer.
pub trait WireFormat: Send + Sync + 'static {
    /// Where requests are POSTed.
    const PATH: &'static str;
    /// Whether requests name the model. The OpenAI API does, and vLLM answers 404 to a name
    /// it does not serve; SGLang's native API serves the one model it has loaded.
    const NAMES_MODEL: bool;
    /// Whether the server takes SGLang's `stop_regex` (the OpenAI API has none).
    const STOP_REGEX: bool;

    /// Where the start-up check asks how a prompt is tokenized.
    const TOKENIZE_PATH: &'static str;

    /// The body asking how `prompt` is tokenized, special tokens included, as a generate
    /// request would tokenize it.
    fn tokenize_body<'a>(
        prompt: &'a str,
        model: Option<&'a str>,
    ) -> impl Serialize + Send + Sync + 'a;

    /// The prompt's tokens from the answer to [`Self::tokenize_body`].
    fn parse_tokens(answer: Value) -> Result<Vec<PromptToken>, String>;

    /// The JSON body of `request`.
    fn body<'a>(request: &'a Request<'a>) -> impl Serialize + Send + Sync + 'a;

    /// The `expected` completions of an answer to a request with `settings`, prompt-major
    /// (p0s0..p0s(n-1), p1s0, ...).
    fn parse(
        answer: Value,
        expected: usize,
        settings: &SamplingSettings,
    ) -> Result<Vec<Completion>, String>;
}

/// What one request carries, whatever the wire.
#[derive(Debug)]
pub struct Request<'a> {
    /// The model name, when the wire names it.
    pub model: Option<&'a str>,
    /// Prompt-major: each prompt once (`sampling = "n"`) or `n` times in a row (`"repeat"`).
    pub texts: Vec<&'a str>,
    /// Samples asked per text: `n`, or 1 when the prompts are repeated.
    pub samples_per_text: usize,
    pub settings: &'a SamplingSettings,
}

/// What every request carries besides its prompts: `[policy]`'s sampling values and the
/// [`RequestSetup`]'s token limit and stops.
#[derive(Debug, Clone)]
pub struct SamplingSettings {
    pub sampling: Sampling,
    pub temperature: f64,
    pub top_p: f64,
    pub max_new_tokens: u32,
    pub stop: Vec<String>,
    /// Empty when the wire has no `stop_regex`.
    pub stop_regex: Vec<String>,
}

/// The prompt of start-up probes (this client's, `doctor`'s): one line a prover continues.
pub const PROBE_PROMPT: &str = "theorem t : 1 + 1 = 2 := by\n";

/// A [`Policy`] speaking the wire `W` to `[policy].urls`.
pub struct HttpPolicy<W> {
    endpoints: Endpoints,
    context_tokens: Option<u32>,
    /// `[policy].model`; unset: the id the server lists (only read when `W` names the model).
    model: Option<String>,
    settings: SamplingSettings,
    wire: PhantomData<W>,
}

impl<W: WireFormat> HttpPolicy<W> {
    pub fn new(config: &PolicyConfig, setup: &RequestSetup) -> Result<Self, PolicyError> {
        let stops = setup.stops.clone();
        if !W::STOP_REGEX && !stops.regexes.is_empty() {
            tracing::info!(
                "the OpenAI-compatible API takes no stop_regex: requests carry only the stop \
                 strings, so a model that writes on after its tactic costs more tokens"
            );
        }
        Ok(Self {
            endpoints: Endpoints::new(config)?,
            context_tokens: setup.context_tokens,
            model: config.model.clone(),
            settings: SamplingSettings {
                sampling: config.sampling,
                temperature: config.temperature,
                top_p: config.top_p,
                max_new_tokens: setup.max_new_tokens,
                stop: stops.strings,
                stop_regex: if W::STOP_REGEX {
                    stops.regexes
                } else {
                    Vec::new()
                },
            },
            wire: PhantomData,
        })
    }

    /// The request for `prompts` with `n` samples each. Both sampling modes give the same
    /// flat answer order: all samples of prompt 0, then prompt 1, ...
    pub fn request<'a>(
        &'a self,
        model: Option<&'a str>,
        prompts: &'a [String],
        n: usize,
    ) -> Request<'a> {
        let (texts, samples_per_text) = match self.settings.sampling {
            Sampling::Repeat => (
                prompts
                    .iter()
                    .flat_map(|p| std::iter::repeat_n(p.as_str(), n))
                    .collect(),
                1,
            ),
            Sampling::N => (prompts.iter().map(String::as_str).collect(), n),
        };
        Request {
            model,
            texts,
            samples_per_text,
            settings: &self.settings,
        }
    }

    /// Whether each server takes the `stop_regex` requests carry, asked at start so that no
    /// theorem spends its retries on one that does not. SGLang has it from 0.5.3; 0.5.2
    /// answers a plain-text 500 to any request carrying it (`SamplingParams.__init__` has no
    /// such keyword, and the `TypeError` from `TokenizerManager._create_tokenized_object` is
    /// not caught by `http_server.py` `generate_request`, which catches only `ValueError`).
    /// So a one-token request with `stop_regex` that gets a 5xx is sent again without it;
    /// answered, and refused once more with it (a 5xx may be passing), it names the fix.
    async fn check_stop_regex(&self) -> Result<(), PolicyError> {
        if self.settings.stop_regex.is_empty() {
            return Ok(());
        }
        let with = SamplingSettings {
            max_new_tokens: 1,
            ..self.settings.clone()
        };
        let without = SamplingSettings {
            stop_regex: Vec::new(),
            ..with.clone()
        };
        // Only SGLang's native wire carries `stop_regex`, and it names no model.
        let probe = |settings| Request {
            model: None,
            texts: vec![PROBE_PROMPT],
            samples_per_text: 1,
            settings,
        };
        let (with, without) = (probe(&with), probe(&without));
        for server in 0..self.endpoints.server_count() {
            let Some(refused) = self.server_error(server, &with).await else {
                continue;
            };
            let answered = self
                .endpoints
                .post_once(server, W::PATH, &W::body(&without))
                .await
                .is_ok();
            if answered && self.server_error(server, &with).await.is_some() {
                return Err(PolicyError::Config(format!(
                    "{refused}, and answers the same request without stop_regex: an SGLang \
                     older than 0.5.3 has no stop_regex; upgrade it to the pinned version \
                     (python-servers/requirements.txt) or set policy.stop_regex = []"
                )));
            }
        }
        Ok(())
    }

    /// `request` sent once to `server`: its 5xx, if that is the answer.
    async fn server_error(&self, server: usize, request: &Request<'_>) -> Option<HttpError> {
        match self
            .endpoints
            .post_once(server, W::PATH, &W::body(request))
            .await
        {
            Err(
                e @ HttpError::Unavailable {
                    last_status: Some(500..=599),
                    ..
                },
            ) => Some(e),
            _ => None,
        }
    }

    /// The model name requests carry: `[policy].model`, else the first id `/v1/models` lists.
    async fn model(&self) -> Result<&str, PolicyError> {
        if let Some(model) = &self.model {
            return Ok(model);
        }
        let served = self.endpoints.served_model().await?;
        served.ids.first().map(String::as_str).ok_or_else(|| {
            PolicyError::Config(
                "policy.model is unset and GET /v1/models lists no model: set policy.model".into(),
            )
        })
    }
}

#[async_trait]
impl<W: WireFormat> Policy for HttpPolicy<W> {
    async fn generate(
        &self,
        prompts: &[String],
        n: usize,
    ) -> Result<Vec<Vec<Completion>>, PolicyError> {
        if prompts.is_empty() || n == 0 {
            return Ok(vec![Vec::new(); prompts.len()]);
        }
        let model = if W::NAMES_MODEL {
            Some(self.model().await?)
        } else {
            None
        };
        super::fit_context(prompts, |prompts| async move {
            let expected = prompts.len() * n;
            let request = self.request(model, prompts, n);
            let flat = self
                .endpoints
                .post(W::PATH, &W::body(&request), expected, |answer| {
                    W::parse(answer, expected, &self.settings)
                })
                .await?;
            Ok(super::group_by_prompt(flat, n))
        })
        .await
    }

    /// Waits for the servers, checks that they take the requests' `stop_regex`
    /// ([`Self::check_stop_regex`]), then asks once what they serve (`/v1/models`,
    /// `/get_model_info`): the model id when the wire names it and `[policy].model` does not,
    /// and the context unless `[policy].context_tokens` gives it. A configured name the server
    /// does not list is warned about, not refused: SGLang serves any name, vLLM answers 404.
    async fn health_check(&self) -> Result<(), PolicyError> {
        self.endpoints.health_check().await?;
        self.check_stop_regex().await?;
        if !W::NAMES_MODEL && self.context_tokens.is_some() {
            return Ok(());
        }
        let served = self.endpoints.served_model().await;
        if W::NAMES_MODEL {
            match (&self.model, &served) {
                (None, _) => {
                    let model = self.model().await?;
                    tracing::info!(model, "policy.model unset: using the id the server lists");
                }
                (Some(model), Ok(served))
                    if !served.ids.is_empty() && !served.ids.contains(model) =>
                {
                    tracing::warn!(
                        "policy.model `{model}` is not among the models the server lists ({}); \
                         vLLM will answer 404",
                        served.ids.join(", ")
                    );
                }
                _ => {}
            }
        }
        if let (Err(e), None) = (&served, self.context_tokens) {
            tracing::warn!(error = %e, "the server does not say its context length; prompts are not bounded (set policy.context_tokens)");
        }
        Ok(())
    }

    /// One request to one server: all of them serve the same model. A 404 is a server without
    /// the route (SGLang's OpenAI API has no `/tokenize`), so the count stays unknown.
    async fn prompt_tokens(&self, prompt: &str) -> Result<Option<Vec<PromptToken>>, PolicyError> {
        let model = if W::NAMES_MODEL {
            Some(self.model().await?)
        } else {
            None
        };
        let answer = self
            .endpoints
            .post(
                W::TOKENIZE_PATH,
                &W::tokenize_body(prompt, model),
                1,
                W::parse_tokens,
            )
            .await;
        match answer {
            Ok(tokens) => Ok(Some(tokens)),
            Err(PolicyError::Server(HttpError::Rejected { status: 404, .. })) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn prompt_budget(&self) -> Option<usize> {
        super::budget(
            self.context_tokens,
            self.endpoints.known_context(),
            self.settings.max_new_tokens,
        )
    }

    fn utilisation(&self) -> Vec<UrlUtilisation> {
        self.endpoints.utilisation()
    }

    fn drain_in_flight_steps(&self, keep_recording: bool) -> Vec<InFlightStep> {
        self.endpoints.drain_in_flight_steps(keep_recording)
    }
}

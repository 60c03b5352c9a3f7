//! A simulated SGLang server: a TEST DOUBLE, not a model. It speaks SGLang's real HTTP API
//! (`POST /generate` with its response shapes, the OpenAI-compatible `POST /v1/completions`,
//! `GET /health`, `GET /get_model_info`, `GET /v1/models`) over loopback, and answers from a
//! [`crate::world::World`] script instead of a GPU. Tests, benchmarks and
//! `stepwise demo` use it so the policy clients run their real HTTP code.
//!
//! Sampling is deterministic: a prompt is matched to the world state whose goals occur in it
//! (longest match, indentation ignored), or else, for prompts that carry no state at the root
//! (DeepSeek-Prover-V1.5 writes none there), to the root of the theorem whose statement it
//! holds; the state's tactics are ranked by log-prob, and the
//! j-th sample of a prompt within one request (counting repeats of the same prompt text, or
//! the `n` index) is the tactic at `j mod len`. So `sampling = "repeat"` and `"n"` see the
//! same completions. A prompt matching no state gets one low-log-prob junk tactic.
//!
//! Like DeepSeek-Prover, the model does not stop after that tactic when it writes inside a
//! Lean code block: it writes the rest of the proof ([`World::rest_of_proof`]), one tactic a
//! line at the proof's indentation, then the closing code fence, unless a stop string or
//! `max_new_tokens` cuts it first. (DeepSeek-Prover-V1.5's `non_cot_prompt` asks it to
//! complete the code and `post_process_output` cuts the answer at that fence,
//! deepseek-ai/DeepSeek-Prover-V1.5 `prover/utils.py`; BurnQED stops its whole-proof samples
//! there, `stop: ["```"]` in mike1729/BurnQED `crates/policy/src/sglang.rs`.) A world tactic
//! whose own `completion` already closes the fence is written as it is. Outside a Lean block
//! (the step provers' prompts) the model writes the one tactic and ends. Each tactic's own
//! tokens carry its world log-prob, the fence's tokens 0, so a tactic's log-prob does not
//! depend on what follows it.
//!
//! A prompt that asks for a sketch (the planner's: the word "sketch" in it) of a theorem
//! whose world lists `sketches` is answered with a proof plan and one of them in a closing
//! ```` ```lean4 ```` block after the statement, the j-th sample the j-th sketch (cycling), on
//! every route, `POST /v1/chat/completions` (the last user message as the prompt) included.
//!
//! Faults on demand: a 503 on every k-th generation request, a latency model (a delay per
//! request, per sample, per decode step and per distinct prompt, booked as GPU time), and an
//! in-memory log of every request.
//!
//! Real-server behaviours on demand (each as the real program words it): 503 on every route
//! while "loading"; the context-length 400 of SGLang's `_validate_one_request`; vLLM's 404 for
//! a model name it does not serve; byte-level tokens whose single-token texts do not spell
//! the completion (a split multi-byte symbol decodes to U+FFFD); `abort` finishes; `null`
//! log-probs; a tokenizer that adds no BOS (`add_bos`), and vLLM's `/tokenize`
//! (`tokenize_route`). Stop strings are always applied, as SGLang does, and reported as `matched`.
//! So is `stop_regex`, as SGLang applies it: after each token it is searched in the output so
//! far, the sample ends at the first token after which a pattern matches (the matched text
//! stays in it: SGLang's detokenizer trims only a literal match, `trim_matched_stop`), and
//! `matched` is the pattern itself (`FINISHED_MATCHED_REGEX`). An SGLang older than 0.5.3,
//! which has no `stop_regex`, on demand: a plain-text 500 to a request carrying one.
//!
//! Prompts are tokenized as a DeepSeek tokenizer served by SGLang tokenizes them, simply:
//! the BOS first (unless `add_bos` is off), a BOS text at the prompt's start as the BOS token
//! itself, then [`TOKEN_CHARS`]-character pieces. `return_logprob` with `logprob_start_len`
//! answers the prompt's tokens in `meta_info.input_token_logprobs`, as SGLang does.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::world::World;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use axum::{Json, Router};
use formats::join_goals;
use serde_json::{json, Value};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// What the simulated model proposes at a state it does not know.
pub const JUNK_TACTIC: &str = "sim_junk_tactic";
pub const JUNK_LOGPROB: f64 = -30.0;
/// Characters per simulated token.
const TOKEN_CHARS: usize = 4;
/// The simulated tokenizer's BOS: DeepSeek-Prover's text and id (its `tokenizer_config.json`
/// `bos_token`, `config.json` `bos_token_id`).
pub const BOS_TEXT: &str = "<｜begin▁of▁sentence｜>";
pub const BOS_ID: u64 = 100_000;
/// The id of a prompt's first text piece; the k-th piece is this plus k.
const PIECE_ID: u64 = 1000;
/// The log-prob of every prompt token but the first (which has none).
const INPUT_LOGPROB: f64 = -2.0;

#[derive(Debug, Clone)]
pub struct SglangOptions {
    /// Where to listen; port 0 picks a free one.
    pub addr: SocketAddr,
    /// Answer 503 to every k-th generation request (1-based: k, 2k, ...).
    pub fail_every: Option<u64>,
    pub delay_per_request: Duration,
    /// Added once per generated sample.
    pub delay_per_sample: Duration,
    /// Added once per decode step: the longest completion of the request, in tokens (a GPU
    /// decodes a batch's samples together).
    pub delay_per_token: Duration,
    /// Added once per distinct prompt text of the request (prefill; repeats of a prompt hit
    /// the prefix cache).
    pub delay_per_prompt: Duration,
    /// Reported by `/get_model_info`, `/v1/models` and in OpenAI answers.
    pub model: String,
    /// Answer 404 as vLLM does to `/v1/completions` naming another model.
    pub enforce_model: bool,
    /// The context in tokens (prompt + `max_new_tokens`); longer requests get SGLang's 400.
    /// Listed as `max_model_len` in `/v1/models`.
    pub context_tokens: Option<usize>,
    /// The first this-many requests, on any route, answer 503 (SGLang while it loads).
    pub loading_requests: u64,
    /// Tokens are 4-byte slices of the UTF-8 text, each token's text decoded alone (lossy).
    pub byte_tokens: bool,
    /// Every k-th sample (1-based, across requests) finishes `abort` halfway through.
    pub abort_every: Option<u64>,
    /// The second token of every sample has a `null` log-prob.
    pub null_logprobs: bool,
    /// The tokenizer puts the BOS before every prompt, as SGLang's does when the model's
    /// `tokenizer_config.json` says `add_bos_token` (DeepSeek's do). Off: a tokenizer that adds
    /// none, so only a prompt that starts with [`BOS_TEXT`] has one.
    pub add_bos: bool,
    /// Answer vLLM's `POST /tokenize`; SGLang has no such route (404).
    pub tokenize_route: bool,
    /// Answer a `/generate` whose `sampling_params` carry `stop_regex` as SGLang before 0.5.3
    /// does (0.5.2: `SamplingParams.__init__` has no such keyword, so
    /// `TokenizerManager._create_tokenized_object` raises a `TypeError`, which
    /// `http_server.py` `generate_request` does not catch: it catches only `ValueError`), with
    /// Starlette's plain-text 500.
    pub no_stop_regex: bool,
}

impl Default for SglangOptions {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            fail_every: None,
            delay_per_request: Duration::ZERO,
            delay_per_sample: Duration::ZERO,
            delay_per_token: Duration::ZERO,
            delay_per_prompt: Duration::ZERO,
            model: "sim/deepseek-prover".into(),
            enforce_model: false,
            context_tokens: None,
            loading_requests: 0,
            byte_tokens: false,
            abort_every: None,
            null_logprobs: false,
            add_bos: true,
            tokenize_route: false,
            no_stop_regex: false,
        }
    }
}

/// One request as received, with the status it was answered with.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedRequest {
    pub path: String,
    /// The JSON body (`Null` for GETs or a body that is not JSON).
    pub body: Value,
    pub status: u16,
}

/// The in-memory request log; clones share it.
#[derive(Debug, Clone, Default)]
pub struct RequestLog(Arc<Mutex<Vec<LoggedRequest>>>);

impl RequestLog {
    pub fn entries(&self) -> Vec<LoggedRequest> {
        self.0.lock().expect("log lock").clone()
    }

    fn push(&self, path: &str, body: Value, status: StatusCode) {
        self.0.lock().expect("log lock").push(LoggedRequest {
            path: path.to_owned(),
            body,
            status: status.as_u16(),
        });
    }
}

/// Simulated GPU time charged, summed over requests; clones share it.
#[derive(Debug, Clone, Default)]
pub struct GpuTime(Arc<AtomicU64>);

impl GpuTime {
    pub fn total(&self) -> Duration {
        Duration::from_nanos(self.0.load(Ordering::SeqCst))
    }

    fn charge(&self, d: Duration) {
        self.0.fetch_add(d.as_nanos() as u64, Ordering::SeqCst);
    }
}

/// A running server. Dropping it (or [`SglangHandle::shutdown`]) stops it.
pub struct SglangHandle {
    /// The simulated GPU time charged so far (every generation request's delay).
    pub gpu_time: GpuTime,
    pub addr: SocketAddr,
    pub log: RequestLog,
    /// TCP connections accepted so far (a client reusing pooled connections opens few).
    pub connections: Arc<AtomicU64>,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl SglangHandle {
    /// `http://addr`, as `[policy].urls` wants it.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting requests and waits for the server task to end.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match (&mut self.task).await {
            Ok(result) => result,
            Err(e) => Err(std::io::Error::other(e)),
        }
    }
}

impl Drop for SglangHandle {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Binds `options.addr` and serves until the handle is shut down or dropped.
pub async fn spawn(world: World, options: SglangOptions) -> std::io::Result<SglangHandle> {
    let listener = tokio::net::TcpListener::bind(options.addr).await?;
    let addr = listener.local_addr()?;
    let log = RequestLog::default();
    let gpu_time = GpuTime::default();
    let mut sim = Sim::new(&world, options, log.clone());
    sim.gpu_time = gpu_time.clone();
    let sim = Arc::new(sim);
    let mut routes = Router::new()
        .route("/generate", post(generate))
        .route("/v1/completions", post(completions))
        .route("/v1/chat/completions", post(chat_completions))
        .route("/health", get(health))
        .route("/get_model_info", get(model_info))
        .route("/v1/models", get(models));
    if sim.options.tokenize_route {
        routes = routes.route("/tokenize", post(tokenize));
    }
    let app = routes
        .layer(axum::middleware::from_fn_with_state(sim.clone(), loading))
        .with_state(sim);
    let (tx, rx) = oneshot::channel::<()>();
    let connections = Arc::new(AtomicU64::new(0));
    let accepted = Arc::clone(&connections);
    let task = tokio::spawn(async move {
        axum::serve(
            listener.tap_io(move |_| {
                accepted.fetch_add(1, Ordering::SeqCst);
            }),
            app,
        )
        .with_graceful_shutdown(async {
            let _ = rx.await;
        })
        .await
    });
    Ok(SglangHandle {
        gpu_time,
        addr,
        log,
        connections,
        shutdown: Some(tx),
        task,
    })
}

/// A tactic as the simulated model writes it, and the rest of the proof it writes after.
#[derive(Debug, Clone)]
struct Proposal {
    tactic: String,
    /// The world's `completion`, from the tactic's column; `None`: the tactic, laid out as
    /// the rest of the proof is.
    completion: Option<String>,
    logprob: f64,
    /// (tactic, log-prob) of each tactic written after it inside a Lean block; empty when
    /// `completion` closes the fence itself.
    rest: Vec<(String, f64)>,
}

impl Proposal {
    /// What the model writes after `prompt`, as (text, log-prob its tokens carry) pieces.
    fn segments(&self, prompt: &str) -> Vec<(String, f64)> {
        let column = proof_column(prompt);
        let mut first = proof_indent(prompt).to_owned();
        match (&self.completion, column) {
            (Some(written), _) => first.push_str(written),
            // The prompt (or `proof_indent`) already holds the first line's indentation.
            (None, Some(column)) => {
                first.push_str(lay_out(&self.tactic, column).trim_start_matches(' '));
            }
            (None, None) => {
                first.push_str(&self.tactic);
                first.push('\n');
            }
        }
        let Some(column) = column else {
            return vec![(first, self.logprob)];
        };
        if first.contains(FENCE) {
            return vec![(first, self.logprob)];
        }
        if !first.ends_with('\n') {
            first.push('\n');
        }
        let mut segments = vec![(first, self.logprob)];
        segments.extend(
            self.rest
                .iter()
                .map(|(tactic, logprob)| (lay_out(tactic, column), *logprob)),
        );
        segments.push((FENCE.to_owned(), 0.0));
        segments
    }
}

/// The code fence that closes a Lean block.
const FENCE: &str = "```";

/// What the simulated planner's tokens carry (a chat model's are not asked for).
const SKETCH_LOGPROB: f64 = -0.5;

/// A planner's answer: a plan, then the sketch after the statement in a closed Lean block.
fn planner_answer(statement: &str, sketch: &str) -> String {
    format!(
        "Proof plan: state the lemmas the goal follows from, then close it with them.\n\n```lean4\n{}\n{}```\n",
        statement.trim_end(),
        lay_out(sketch, PROOF_INDENT.len())
    )
}

struct Sim {
    /// (goals key with indentation removed, proposals best first), longest key first.
    states: Vec<(String, Vec<Proposal>)>,
    /// (statement without `:= by`, indentation removed; its root's goals key), longest first.
    roots: Vec<(String, String)>,
    /// (statement without `:= by`, indentation removed; the planner's answers), longest first.
    sketches: Vec<(String, Vec<String>)>,
    options: SglangOptions,
    log: RequestLog,
    gpu_time: GpuTime,
    generation_requests: AtomicU64,
    /// Requests on any route, for `loading_requests`.
    all_requests: AtomicU64,
    /// Samples so far, for `abort_every`.
    samples: AtomicU64,
    started: Instant,
}

/// A sampled completion before it is put in either API's shape.
struct Sample {
    text: String,
    /// (text, log-prob) per simulated token.
    tokens: Vec<(String, f64)>,
    /// Where each token ends in `text`, in bytes (token texts may be lossy).
    token_ends: Vec<usize>,
    finish: Finish,
}

/// Why a sample ended.
#[derive(Debug, Clone, PartialEq)]
enum Finish {
    /// End of sequence.
    Eos,
    /// A stop string matched (SGLang trims it from the text).
    Stop(String),
    /// A stop regex matched (the text keeps the match); the pattern.
    StopRegex(String),
    /// `max_new_tokens` reached.
    Length(usize),
    /// The server aborted it.
    Abort,
}

impl Sample {
    /// Cut to the first half of its tokens and finished `abort`, as SGLang answers a request
    /// aborted while it ran (`FINISH_ABORT`).
    fn abort(&mut self) {
        let keep = self.tokens.len() / 2;
        self.tokens.truncate(keep);
        self.token_ends.truncate(keep);
        let cut = floor_char_boundary(&self.text, self.token_ends.last().copied().unwrap_or(0));
        self.text.truncate(cut);
        self.finish = Finish::Abort;
    }

    /// SGLang's `meta_info.finish_reason` (`schedule_batch.py`).
    fn native_finish(&self) -> Value {
        match &self.finish {
            Finish::Eos => json!({"type": "stop", "matched": EOS_TOKEN_ID}),
            Finish::Stop(s) | Finish::StopRegex(s) => json!({"type": "stop", "matched": s}),
            Finish::Length(n) => json!({"type": "length", "length": n}),
            Finish::Abort => json!({"type": "abort", "message": "Abort in waiting queue"}),
        }
    }

    fn openai_finish(&self) -> &'static str {
        match self.finish {
            Finish::Eos | Finish::Stop(_) | Finish::StopRegex(_) => "stop",
            Finish::Length(_) => "length",
            Finish::Abort => "abort",
        }
    }
}

/// The token id a natural end matches.
const EOS_TOKEN_ID: u64 = 2;

/// Sampling values the simulation honours, after validation.
struct Params {
    n: usize,
    max_tokens: usize,
    stop: Vec<String>,
    stop_regex: Vec<fancy_regex::Regex>,
}

impl Sim {
    fn new(world: &World, options: SglangOptions, log: RequestLog) -> Self {
        let mut states: Vec<(String, Vec<Proposal>)> = world
            .state_index()
            .into_iter()
            .map(|(key, state)| {
                let mut proposals: Vec<Proposal> = state
                    .tactics
                    .iter()
                    .map(|t| Proposal {
                        tactic: t.tactic.clone(),
                        completion: t.completion.clone(),
                        logprob: t.logprob,
                        rest: if t.completion.as_ref().is_some_and(|c| c.contains(FENCE)) {
                            Vec::new()
                        } else {
                            world
                                .rest_of_proof(&state.goals, t)
                                .into_iter()
                                .map(|r| (r.tactic.clone(), r.logprob))
                                .collect()
                        },
                    })
                    .collect();
                proposals.sort_by(|a, b| b.logprob.total_cmp(&a.logprob));
                (dedent(&key), proposals)
            })
            .filter(|(key, _)| !key.is_empty())
            .collect();
        states.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
        let mut roots: Vec<(String, String)> = world
            .theorems
            .iter()
            .map(|t| {
                (
                    dedent(formats::theorems::statement_head(&t.formal_statement)),
                    dedent(&join_goals(&t.root)),
                )
            })
            .filter(|(statement, _)| !statement.is_empty())
            .collect();
        roots.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
        let mut sketches: Vec<(String, Vec<String>)> = world
            .theorems
            .iter()
            .filter(|t| !t.sketches.is_empty())
            .map(|t| {
                let answers = t
                    .sketches
                    .iter()
                    .map(|sketch| planner_answer(&t.formal_statement, sketch))
                    .collect();
                (
                    dedent(formats::theorems::statement_head(&t.formal_statement)),
                    answers,
                )
            })
            .collect();
        sketches.sort_by_key(|s| std::cmp::Reverse(s.0.len()));
        Self {
            states,
            roots,
            sketches,
            options,
            log,
            gpu_time: GpuTime::default(),
            generation_requests: AtomicU64::new(0),
            all_requests: AtomicU64::new(0),
            samples: AtomicU64::new(0),
            started: Instant::now(),
        }
    }

    fn proposals(&self, prompt: &str) -> Option<&[Proposal]> {
        let prompt = dedent(prompt);
        let by_state = |key: &str| {
            self.states
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, p)| p.as_slice())
        };
        self.states
            .iter()
            .find(|(key, _)| prompt.contains(key.as_str()))
            .map(|(_, p)| p.as_slice())
            .or_else(|| {
                let (_, root) = self
                    .roots
                    .iter()
                    .find(|(statement, _)| prompt.contains(statement.as_str()))?;
                by_state(root)
            })
    }

    /// The planner's answers for a prompt that asks for a sketch of a theorem that has them.
    fn sketches(&self, prompt: &str) -> Option<&[String]> {
        if !prompt.to_lowercase().contains("sketch") {
            return None;
        }
        let prompt = dedent(prompt);
        self.sketches
            .iter()
            .find(|(statement, _)| prompt.contains(statement.as_str()))
            .map(|(_, answers)| answers.as_slice())
    }

    /// Every prompt's `n` samples, prompt-major; repeats of a prompt text continue its count.
    fn sample(&self, prompts: &[String], params: &Params) -> Vec<Sample> {
        let mut seen: HashMap<&str, usize> = HashMap::new();
        let mut out = Vec::with_capacity(prompts.len() * params.n);
        for prompt in prompts {
            let proposals = self.proposals(prompt);
            let sketches = self.sketches(prompt);
            let next = seen.entry(prompt.as_str()).or_default();
            for _ in 0..params.n {
                let j = *next;
                *next += 1;
                if let Some(answers) = sketches {
                    let answer = &answers[j % answers.len()];
                    let segments = [(answer.clone(), SKETCH_LOGPROB)];
                    out.push(render_sample(&segments, params, self.options.byte_tokens));
                    continue;
                }
                let junk = Proposal {
                    tactic: JUNK_TACTIC.to_owned(),
                    completion: None,
                    logprob: JUNK_LOGPROB,
                    rest: Vec::new(),
                };
                let proposal = match proposals {
                    Some(list) if !list.is_empty() => &list[j % list.len()],
                    _ => &junk,
                };
                let mut sample =
                    render_sample(&proposal.segments(prompt), params, self.options.byte_tokens);
                let number = self.samples.fetch_add(1, Ordering::SeqCst) + 1;
                if self
                    .options
                    .abort_every
                    .is_some_and(|k| number.is_multiple_of(k))
                {
                    sample.abort();
                }
                out.push(sample);
            }
        }
        out
    }

    /// The prompt's tokens as (id, text): the BOS when the tokenizer adds one, each BOS text
    /// at the start as the BOS token itself (a Hugging Face tokenizer matches special tokens'
    /// text before anything else), then [`TOKEN_CHARS`]-character pieces.
    fn input_tokens(&self, prompt: &str, add_special_tokens: bool) -> Vec<(u64, String)> {
        let bos = || (BOS_ID, BOS_TEXT.to_owned());
        let mut tokens = Vec::new();
        if add_special_tokens && self.options.add_bos {
            tokens.push(bos());
        }
        let mut rest = prompt;
        while let Some(after) = rest.strip_prefix(BOS_TEXT) {
            tokens.push(bos());
            rest = after;
        }
        tokens.extend(
            pieces(rest, false)
                .into_iter()
                .enumerate()
                .map(|(k, (a, b))| (PIECE_ID + k as u64, rest[a..b].to_owned())),
        );
        tokens
    }

    /// The simulated tokenizer's prompt length, as a request counts it.
    fn prompt_tokens(&self, prompt: &str) -> usize {
        self.input_tokens(prompt, true).len()
    }

    /// SGLang's context checks (`tokenizer_manager.py` `_validate_one_request`), in its words.
    fn check_context(&self, prompts: &[String], params: &Params) -> Result<(), String> {
        let Some(context) = self.options.context_tokens else {
            return Ok(());
        };
        for prompt in prompts {
            let input = self.prompt_tokens(prompt);
            if input >= context {
                return Err(format!(
                    "The input ({input} tokens) is longer than the model's context length \
                     ({context} tokens)."
                ));
            }
            if input + params.max_tokens > context {
                return Err(format!(
                    "Requested token count exceeds the model's maximum context length of \
                     {context} tokens. You requested a total of {} tokens: {input} tokens from \
                     the input messages and {} tokens for the completion. Please reduce the \
                     number of tokens in the input messages or the completion to fit within \
                     the limit.",
                    input + params.max_tokens,
                    params.max_tokens
                ));
            }
        }
        Ok(())
    }

    /// A token's log-prob as sent: `null` for the second token with `null_logprobs` (orjson
    /// writes NaN that way).
    fn logprob_value(&self, index: usize, logprob: f64) -> Value {
        if self.options.null_logprobs && index == 1 {
            Value::Null
        } else {
            json!(logprob)
        }
    }

    /// `meta_info.input_token_logprobs`: `[logprob, token_id, text]` per prompt token from
    /// `start` on (none for a negative start), the first entry's log-prob `null`
    /// (`scheduler_output_processor_mixin.py` `_process_input_token_logprobs`: "add None at
    /// start"), the text `null` unless `return_text_in_logprobs`.
    fn input_token_logprobs(&self, prompt: &str, start: i64, with_text: bool) -> Value {
        let Ok(start) = usize::try_from(start) else {
            return json!([]);
        };
        self.input_tokens(prompt, true)
            .into_iter()
            .skip(start)
            .enumerate()
            .map(|(k, (id, text))| {
                json!([
                    if k == 0 {
                        Value::Null
                    } else {
                        json!(INPUT_LOGPROB)
                    },
                    id,
                    if with_text { json!(text) } else { Value::Null }
                ])
            })
            .collect()
    }

    /// Counts a generation request; true when this one is to fail with 503.
    fn injected_fault(&self) -> bool {
        let number = self.generation_requests.fetch_add(1, Ordering::SeqCst) + 1;
        self.options
            .fail_every
            .is_some_and(|k| number.is_multiple_of(k))
    }

    /// Sleeps what the request costs in the latency model and books it as GPU time: a fixed
    /// part, per sample, per decode step (the longest completion) and per distinct prompt.
    async fn delay(&self, prompts: &[String], samples: &[Sample]) {
        let o = &self.options;
        let distinct: std::collections::HashSet<&String> = prompts.iter().collect();
        let steps = samples.iter().map(|s| s.tokens.len()).max().unwrap_or(0);
        let d = o.delay_per_request
            + o.delay_per_sample * samples.len() as u32
            + o.delay_per_token * steps as u32
            + o.delay_per_prompt * distinct.len() as u32;
        if !d.is_zero() {
            self.gpu_time.charge(d);
            tokio::time::sleep(d).await;
        }
    }
}

/// The completion (the segments' texts, one after another) cut at the first stop string,
/// split into tokens, and cut again at `max_tokens`. Each segment is tokenised on its own and
/// its kept tokens share its log-prob, so a tactic's tokens sum to its world log-prob also
/// when a stop string cuts the text inside it. Tokens are [`TOKEN_CHARS`] characters, or with
/// `byte_tokens` that many bytes, each token's text decoded on its own as SGLang's
/// `return_text_in_logprobs` does (`tokenizer_manager.py` `detokenize_logprob_tokens`), so a
/// symbol split between tokens reads U+FFFD in both.
fn render_sample(segments: &[(String, f64)], params: &Params, byte_tokens: bool) -> Sample {
    let full: String = segments.iter().map(|(text, _)| text.as_str()).collect();
    // A stop string that the token stopping on a regex completes is then found below, as
    // SGLang checks strings first.
    let regex_end = regex_stop(segments, &full, &params.stop_regex, byte_tokens);
    let mut text = regex_end.map_or(full.as_str(), |(end, _)| {
        &full[..floor_char_boundary(&full, end)]
    });
    let mut stopped = regex_end.map(|(_, pattern)| Finish::StopRegex(pattern.to_owned()));
    for stop in params.stop.iter().filter(|s| !s.is_empty()) {
        if let Some(at) = text.find(stop.as_str()) {
            text = &text[..at];
            stopped = Some(Finish::Stop(stop.clone()));
        }
    }
    // (start, end, log-prob) of the tokens, in bytes of `text`.
    let mut tokens: Vec<(usize, usize, f64)> = Vec::new();
    let mut segment_start = 0;
    for (segment, logprob) in segments {
        let (from, to) = (
            segment_start,
            (segment_start + segment.len()).min(text.len()),
        );
        segment_start += segment.len();
        if from >= to {
            break;
        }
        let bounds = token_bounds(&text[from..to], byte_tokens);
        let count = bounds.len();
        let each = logprob / count as f64;
        tokens.extend(bounds.iter().map(|&(a, b)| (from + a, from + b, each)));
        if let Some(last) = tokens.last_mut() {
            // The segment's pieces sum to its log-prob exactly.
            last.2 = logprob - each * (count - 1) as f64;
        }
    }
    let mut finish = stopped.unwrap_or(Finish::Eos);
    if tokens.len() > params.max_tokens {
        tokens.truncate(params.max_tokens);
        finish = Finish::Length(params.max_tokens);
    }
    let cut = floor_char_boundary(text, tokens.last().map_or(0, |t| t.1));
    Sample {
        text: text[..cut].to_owned(),
        token_ends: tokens.iter().map(|t| t.1.min(cut)).collect(),
        tokens: tokens
            .into_iter()
            .map(|(a, b, lp)| {
                (
                    String::from_utf8_lossy(&text.as_bytes()[a..b]).into_owned(),
                    lp,
                )
            })
            .collect(),
        finish,
    }
}

/// Where SGLang ends a sample on `stop_regex`: the end (a byte of `full`, the segments'
/// text) of the first token after which a pattern matches the output so far, and the
/// pattern. SGLang checks after each token (`Req._check_str_based_finish`, `re.search` on
/// `tail_str`: the last `stop_regex_max_len + 1` tokens decoded), and a pattern with an
/// unbounded repeat or a construct `get_max_seq_length` does not handle (`[^\n]`, a
/// lookaround) has a bound of 2^30 tokens, so its tail is the whole output. The whole output
/// is searched here for every pattern: for a bounded one SGLang sees less, which matters
/// only to an anchor. The output so far is decoded as SGLang decodes it, a symbol cut by a
/// byte-level token as U+FFFD.
fn regex_stop<'p>(
    segments: &[(String, f64)],
    full: &str,
    patterns: &'p [fancy_regex::Regex],
    byte_tokens: bool,
) -> Option<(usize, &'p str)> {
    if patterns.is_empty() {
        return None;
    }
    let mut start = 0;
    for (segment, _) in segments {
        for (_, end) in token_bounds(segment, byte_tokens) {
            let so_far = String::from_utf8_lossy(&full.as_bytes()[..start + end]);
            if let Some(p) = patterns
                .iter()
                .find(|p| p.is_match(&so_far).unwrap_or(false))
            {
                return Some((start + end, p.as_str()));
            }
        }
        start += segment.len();
    }
    None
}

/// The last char boundary of `text` at or before byte `at`.
fn floor_char_boundary(text: &str, mut at: usize) -> usize {
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// Byte ranges of the simulated tokens of a non-empty `text`. A last piece of only
/// whitespace (a tactic's line break) joins the token before it, so the tokens that cover a
/// tactic's text are all its own: a client summing them reads the world's log-prob whether a
/// stop string took the line break or not.
fn token_bounds(text: &str, byte_tokens: bool) -> Vec<(usize, usize)> {
    let mut bounds = pieces(text, byte_tokens);
    let last_is_space =
        |(start, _): (usize, usize)| text.as_bytes()[start..].iter().all(u8::is_ascii_whitespace);
    if bounds.len() > 1 && bounds.last().copied().is_some_and(last_is_space) {
        let (_, end) = bounds.pop().expect("two pieces");
        bounds.last_mut().expect("one piece").1 = end;
    }
    bounds
}

/// [`TOKEN_CHARS`]-character (or -byte) pieces of `text`.
fn pieces(text: &str, byte_tokens: bool) -> Vec<(usize, usize)> {
    if byte_tokens {
        (0..text.len())
            .step_by(TOKEN_CHARS)
            .map(|at| (at, (at + TOKEN_CHARS).min(text.len())))
            .collect()
    } else {
        let starts: Vec<usize> = text
            .char_indices()
            .map(|(i, _)| i)
            .step_by(TOKEN_CHARS)
            .collect();
        starts
            .iter()
            .enumerate()
            .map(|(k, &start)| (start, starts.get(k + 1).copied().unwrap_or(text.len())))
            .collect()
    }
}

/// Whether `prompt` ends inside an open ```` ```lean4 ```` block (DeepSeek-Prover's prompts:
/// the model continues Lean code).
fn inside_lean_block(prompt: &str) -> bool {
    prompt
        .rfind(FENCE)
        .is_some_and(|at| prompt[at..].starts_with("```lean4\n"))
}

/// What the model writes before a world completion (which starts at the tactic's column):
/// a prompt that ends at a line start inside a Lean block (DeepSeek-Prover-V1.5's, which
/// stops after `:= by\n` or `-/\n`) leaves the proof's two-space indentation to the model.
fn proof_indent(prompt: &str) -> &'static str {
    if prompt.ends_with('\n') && inside_lean_block(prompt) {
        PROOF_INDENT
    } else {
        ""
    }
}

/// Lean's proof indentation, as DeepSeek-Prover writes it under `:= by`.
const PROOF_INDENT: &str = "  ";

/// The column the model writes the proof's tactics at when `prompt` leaves it inside a Lean
/// block: the prompt's trailing spaces if its last line is only spaces (a template that
/// indents the first tactic itself), else Lean's two spaces; `None` outside a Lean block.
fn proof_column(prompt: &str) -> Option<usize> {
    if !inside_lean_block(prompt) {
        return None;
    }
    let last_line = prompt.rsplit('\n').next().unwrap_or("");
    Some(
        if !last_line.is_empty() && last_line.bytes().all(|b| b == b' ') {
            last_line.len()
        } else {
            PROOF_INDENT.len()
        },
    )
}

/// `tactic` laid out as a proof line at `column`: each of its lines indented by `column` (its
/// own lines after the first are indented relative to its first), ending in a newline.
fn lay_out(tactic: &str, column: usize) -> String {
    let indent = " ".repeat(column);
    tactic
        .lines()
        .map(|line| format!("{indent}{line}\n"))
        .collect()
}

/// Lines with their leading whitespace removed, so an indented `/- tactic state -/` comment
/// matches the REPL's goals text.
fn dedent(text: &str) -> String {
    text.lines().map(str::trim).collect::<Vec<_>>().join("\n")
}

/// A rejected request, in the error shape of the route it came to (a JSON string: plain text).
struct Rejection {
    status: StatusCode,
    body: Value,
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        match self.body {
            Value::String(text) => (self.status, text).into_response(),
            body => (self.status, Json(body)).into_response(),
        }
    }
}

/// Starlette's answer to an exception no handler caught (`ServerErrorMiddleware`
/// `error_response`): 500 and `Internal Server Error` in plain text.
fn uncaught_exception() -> Rejection {
    Rejection {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        body: Value::String("Internal Server Error".into()),
    }
}

/// SGLang native routes answer `{"error": {"message"}}`.
fn native_error(status: StatusCode, message: &str) -> Rejection {
    Rejection {
        status,
        body: json!({"error": {"message": message}}),
    }
}

/// SGLang's OpenAI-compatible routes answer `{"object": "error", "message", "code"}`.
fn openai_error(status: StatusCode, message: &str) -> Rejection {
    Rejection {
        status,
        body: json!({"object": "error", "message": message, "type": "BadRequestError",
                     "param": null, "code": status.as_u16()}),
    }
}

/// vLLM 0.10's 404 for a model name it does not serve (`serving_engine.py` `_check_model`,
/// nested `ErrorResponse`).
fn vllm_unknown_model(named: &str) -> Rejection {
    Rejection {
        status: StatusCode::NOT_FOUND,
        body: json!({"error": {"message": format!("The model `{named}` does not exist."),
                               "type": "NotFoundError", "param": null, "code": 404}}),
    }
}

/// `text`/`prompt` as a string or a non-empty list of strings; `(prompts, was_single)`.
fn prompts_of(value: Option<&Value>, field: &str) -> Result<(Vec<String>, bool), String> {
    match value {
        Some(Value::String(s)) => Ok((vec![s.clone()], true)),
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or(format!("`{field}` items must be strings"))
            })
            .collect::<Result<_, _>>()
            .map(|p| (p, false)),
        _ => Err(format!(
            "`{field}` must be a string or a non-empty list of strings"
        )),
    }
}

fn number(params: &Value, key: &str) -> Option<f64> {
    params.get(key).and_then(Value::as_f64)
}

/// Checks the sampling values as SGLang does and keeps those the simulation uses.
fn params_of(params: &Value, max_key: &str, default_max: usize) -> Result<Params, String> {
    if let Some(t) = number(params, "temperature") {
        if t < 0.0 {
            return Err(format!("temperature must be non-negative, got {t}"));
        }
    }
    if let Some(p) = number(params, "top_p") {
        if !(p > 0.0 && p <= 1.0) {
            return Err(format!("top_p must be in (0, 1], got {p}"));
        }
    }
    let n = match params.get("n") {
        None | Some(Value::Null) => 1,
        Some(v) => v
            .as_u64()
            .filter(|&n| n >= 1)
            .ok_or(format!("n must be a positive integer, got {v}"))? as usize,
    };
    let max_tokens = match params.get(max_key) {
        None | Some(Value::Null) => default_max,
        Some(v) => v
            .as_u64()
            .ok_or(format!("{max_key} must be a non-negative integer, got {v}"))?
            as usize,
    };
    let stop = match params.get("stop") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        Some(v) => return Err(format!("stop must be a string or a list, got {v}")),
    };
    let stop_regex = match params.get("stop_regex") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        Some(v) => return Err(format!("stop_regex must be a string or a list, got {v}")),
    }
    .into_iter()
    .map(|p| fancy_regex::Regex::new(p).map_err(|e| format!("stop_regex {p:?}: {e}")))
    .collect::<Result<_, _>>()?;
    Ok(Params {
        n,
        max_tokens,
        stop,
        stop_regex,
    })
}

async fn generate(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    let (status, response) = match generate_inner(&sim, &body).await {
        Ok(answer) => (StatusCode::OK, Json(answer).into_response()),
        Err(rejection) => (rejection.status, rejection.into_response()),
    };
    sim.log.push(
        "/generate",
        serde_json::from_slice(&body).unwrap_or(Value::Null),
        status,
    );
    response
}

async fn generate_inner(sim: &Sim, body: &[u8]) -> Result<Value, Rejection> {
    let bad = |m: String| native_error(StatusCode::BAD_REQUEST, &m);
    let request: Value =
        serde_json::from_slice(body).map_err(|e| bad(format!("invalid JSON: {e}")))?;
    if sim.injected_fault() {
        return Err(native_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "simulated fault: server busy",
        ));
    }
    let (prompts, single) = prompts_of(request.get("text"), "text").map_err(bad)?;
    let sampling = request.get("sampling_params").cloned().unwrap_or(json!({}));
    if !sampling.is_object() {
        return Err(bad("`sampling_params` must be an object".into()));
    }
    if sim.options.no_stop_regex && sampling.get("stop_regex").is_some() {
        return Err(uncaught_exception());
    }
    let params = params_of(&sampling, "max_new_tokens", 128).map_err(bad)?;
    sim.check_context(&prompts, &params).map_err(bad)?;
    let flag = |k: &str| request.get(k).and_then(Value::as_bool).unwrap_or(false);
    let (return_logprob, with_text) = (flag("return_logprob"), flag("return_text_in_logprobs"));
    // SGLang's default -1: the output's log-probs alone (`io_struct.py` `GenerateReqInput`).
    let logprob_start_len = request
        .get("logprob_start_len")
        .and_then(Value::as_i64)
        .unwrap_or(-1);
    let started = sim.started.elapsed().as_secs_f64();
    let samples = sim.sample(&prompts, &params);
    sim.delay(&prompts, &samples).await;
    let latency = sim.started.elapsed().as_secs_f64() - started;
    let request_number = sim.generation_requests.load(Ordering::SeqCst);
    let items: Vec<Value> = samples
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let prompt = &prompts[i / params.n];
            let mut meta = json!({
                "id": format!("sim-{request_number}-{i}"),
                "finish_reason": s.native_finish(),
                "prompt_tokens": sim.prompt_tokens(prompt),
                "completion_tokens": s.tokens.len(),
                "cached_tokens": 0,
                "e2e_latency": latency,
            });
            if return_logprob {
                meta["input_token_logprobs"] =
                    sim.input_token_logprobs(prompt, logprob_start_len, with_text);
                meta["output_token_logprobs"] = s
                    .tokens
                    .iter()
                    .enumerate()
                    .map(|(k, (text, lp))| {
                        json!([
                            sim.logprob_value(k, *lp),
                            1000 + k,
                            if with_text { json!(text) } else { Value::Null }
                        ])
                    })
                    .collect();
            }
            json!({"text": s.text, "meta_info": meta})
        })
        .collect();
    Ok(if single && params.n == 1 {
        items.into_iter().next().expect("one sample")
    } else {
        Value::Array(items)
    })
}

/// An OpenAI-compatible request's body as vLLM reads it: JSON, then (here) the injected
/// fault, then the model name checked against the one served.
fn openai_request(sim: &Sim, body: &[u8]) -> Result<Value, Rejection> {
    let request: Value = serde_json::from_slice(body)
        .map_err(|e| openai_error(StatusCode::BAD_REQUEST, &format!("invalid JSON: {e}")))?;
    if sim.injected_fault() {
        return Err(openai_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "simulated fault: server busy",
        ));
    }
    if sim.options.enforce_model {
        let named = request.get("model").and_then(Value::as_str).unwrap_or("");
        if named != sim.options.model {
            return Err(vllm_unknown_model(named));
        }
    }
    Ok(request)
}

async fn completions(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    let (status, response) = match completions_inner(&sim, &body).await {
        Ok(answer) => (StatusCode::OK, Json(answer).into_response()),
        Err(rejection) => (rejection.status, rejection.into_response()),
    };
    sim.log.push(
        "/v1/completions",
        serde_json::from_slice(&body).unwrap_or(Value::Null),
        status,
    );
    response
}

async fn completions_inner(sim: &Sim, body: &[u8]) -> Result<Value, Rejection> {
    let bad = |m: String| openai_error(StatusCode::BAD_REQUEST, &m);
    let request = openai_request(sim, body)?;
    let (prompts, _) = prompts_of(request.get("prompt"), "prompt").map_err(bad)?;
    let params = params_of(&request, "max_tokens", 16).map_err(bad)?;
    sim.check_context(&prompts, &params).map_err(bad)?;
    let with_logprobs = request.get("logprobs").is_some_and(|v| !v.is_null());
    let samples = sim.sample(&prompts, &params);
    sim.delay(&prompts, &samples).await;
    // Listed last-first: clients must place choices by `index`, not by position.
    let choices: Vec<Value> = samples
        .iter()
        .enumerate()
        .rev()
        .map(|(index, s)| {
            let logprobs = with_logprobs.then(|| {
                let mut offset = 0;
                let offsets: Vec<usize> = s
                    .tokens
                    .iter()
                    .map(|(t, _)| {
                        let at = offset;
                        offset += t.len();
                        at
                    })
                    .collect();
                json!({
                    "tokens": s.tokens.iter().map(|t| &t.0).collect::<Vec<_>>(),
                    "token_logprobs": s.tokens.iter().enumerate().map(|(k, t)| sim.logprob_value(k, t.1)).collect::<Vec<_>>(),
                    "top_logprobs": s.tokens.iter().map(|(t, lp)| json!({t.as_str(): lp})).collect::<Vec<_>>(),
                    "text_offset": offsets,
                })
            });
            json!({
                "index": index,
                "text": s.text,
                "logprobs": logprobs,
                "finish_reason": s.openai_finish(),
            })
        })
        .collect();
    let completion_tokens: usize = samples.iter().map(|s| s.tokens.len()).sum();
    // Each prompt of the list once, whatever `n` is (vLLM `serving_completion.py` sums
    // `len(final_res.prompt_token_ids)` over the prompts; SGLang's adapter takes every n-th
    // item's `prompt_tokens`).
    let prompt_tokens: usize = prompts.iter().map(|p| sim.prompt_tokens(p)).sum();
    Ok(json!({
        "id": format!("cmpl-sim-{}", sim.generation_requests.load(Ordering::SeqCst)),
        "object": "text_completion",
        "created": 0,
        "model": sim.options.model,
        "choices": choices,
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    }))
}

async fn chat_completions(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    let (status, response) = match chat_completions_inner(&sim, &body).await {
        Ok(answer) => (StatusCode::OK, Json(answer).into_response()),
        Err(rejection) => (rejection.status, rejection.into_response()),
    };
    sim.log.push(
        "/v1/chat/completions",
        serde_json::from_slice(&body).unwrap_or(Value::Null),
        status,
    );
    response
}

/// vLLM's `POST /v1/chat/completions` (`serving_chat.py`, `protocol.py`
/// `ChatCompletionRequest`): the last user message is the prompt (the simulated model's chat
/// template adds nothing), `n` choices of `{"index", "message": {"role": "assistant",
/// "content"}, "finish_reason"}` and the request's `usage`.
async fn chat_completions_inner(sim: &Sim, body: &[u8]) -> Result<Value, Rejection> {
    let bad = |m: String| openai_error(StatusCode::BAD_REQUEST, &m);
    let request = openai_request(sim, body)?;
    let prompt = request
        .get("messages")
        .and_then(Value::as_array)
        .and_then(|messages| {
            messages
                .iter()
                .rev()
                .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        })
        .and_then(|m| m.get("content").and_then(Value::as_str))
        .ok_or_else(|| bad("`messages` holds no user message with a string `content`".into()))?
        .to_owned();
    let prompts = [prompt];
    let params = params_of(&request, "max_tokens", 16).map_err(bad)?;
    sim.check_context(&prompts, &params).map_err(bad)?;
    let samples = sim.sample(&prompts, &params);
    sim.delay(&prompts, &samples).await;
    let choices: Vec<Value> = samples
        .iter()
        .enumerate()
        .map(|(index, s)| {
            json!({
                "index": index,
                "message": {"role": "assistant", "content": s.text},
                "finish_reason": s.openai_finish(),
            })
        })
        .collect();
    let completion_tokens: usize = samples.iter().map(|s| s.tokens.len()).sum();
    let prompt_tokens = sim.prompt_tokens(&prompts[0]);
    Ok(json!({
        "id": format!("chatcmpl-sim-{}", sim.generation_requests.load(Ordering::SeqCst)),
        "object": "chat.completion",
        "created": 0,
        "model": sim.options.model,
        "choices": choices,
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    }))
}

/// vLLM's `POST /tokenize` (`serving_tokenization.py` `create_tokenize`, `protocol.py`
/// `TokenizeCompletionRequest`): `{"model", "prompt", "add_special_tokens" (default true),
/// "return_token_strs"}` to `{"count", "max_model_len", "tokens", "token_strs"}`, the model
/// name checked as its completions check it.
async fn tokenize(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let answer = (|| {
        let bad = |m: &str| openai_error(StatusCode::BAD_REQUEST, m);
        if sim.options.enforce_model {
            let named = request.get("model").and_then(Value::as_str).unwrap_or("");
            if named != sim.options.model {
                return Err(vllm_unknown_model(named));
            }
        }
        let prompt = request
            .get("prompt")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("`prompt` must be a string"))?;
        let special = request
            .get("add_special_tokens")
            .and_then(Value::as_bool)
            .unwrap_or(true);
        let tokens = sim.input_tokens(prompt, special);
        let mut answer = json!({
            "count": tokens.len(),
            "max_model_len": sim.options.context_tokens,
            "tokens": tokens.iter().map(|t| t.0).collect::<Vec<_>>(),
        });
        if request.get("return_token_strs").and_then(Value::as_bool) == Some(true) {
            answer["token_strs"] = tokens.iter().map(|t| t.1.as_str()).collect();
        }
        Ok(answer)
    })();
    let (status, response) = match answer {
        Ok(answer) => (StatusCode::OK, Json(answer).into_response()),
        Err(rejection) => (rejection.status, rejection.into_response()),
    };
    sim.log.push("/tokenize", request, status);
    response
}

/// 503 with an empty body, as SGLang's `/health` answers while `server_status` is
/// `Starting` (`http_server.py`), for the first `loading_requests` requests on any route.
async fn loading(
    State(sim): State<Arc<Sim>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let number = sim.all_requests.fetch_add(1, Ordering::SeqCst) + 1;
    if number <= sim.options.loading_requests {
        sim.log.push(
            request.uri().path(),
            Value::Null,
            StatusCode::SERVICE_UNAVAILABLE,
        );
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    next.run(request).await
}

/// The OpenAI model list (vLLM `ModelList`/`ModelCard`, `show_available_models`; SGLang answers
/// the same shape): one card, `max_model_len` the context.
async fn models(State(sim): State<Arc<Sim>>) -> Json<Value> {
    sim.log.push("/v1/models", Value::Null, StatusCode::OK);
    Json(json!({"object": "list", "data": [{
        "id": sim.options.model, "object": "model", "created": 0, "owned_by": "vllm",
        "root": sim.options.model, "parent": null,
        "max_model_len": sim.options.context_tokens, "permission": []
    }]}))
}

async fn health(State(sim): State<Arc<Sim>>) -> StatusCode {
    sim.log.push("/health", Value::Null, StatusCode::OK);
    StatusCode::OK
}

async fn model_info(State(sim): State<Arc<Sim>>) -> Json<Value> {
    sim.log.push("/get_model_info", Value::Null, StatusCode::OK);
    Json(json!({
        "model_path": sim.options.model,
        "tokenizer_path": sim.options.model,
        "is_generation": true,
        // SGLang's `--weight-version` default (sglang/srt/server_args.py).
        "weight_version": "default",
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(max_tokens: usize, stop: &[&str]) -> Params {
        Params {
            n: 1,
            max_tokens,
            stop: stop.iter().map(|s| (*s).to_owned()).collect(),
            stop_regex: Vec::new(),
        }
    }

    /// `params` with stop regexes, compiled as a request's are.
    fn with_regex(max_tokens: usize, stop: &[&str], stop_regex: &[&str]) -> Params {
        let body = json!({"max_new_tokens": max_tokens, "stop": stop, "stop_regex": stop_regex});
        params_of(&body, "max_new_tokens", 128).unwrap()
    }

    /// A proposal with no rest of the proof, outside a Lean block.
    fn alone(completion: &str, logprob: f64) -> Vec<(String, f64)> {
        Proposal {
            tactic: String::new(),
            completion: Some(completion.into()),
            logprob,
            rest: Vec::new(),
        }
        .segments("x : ℕ\n⊢ x = x")
    }

    #[test]
    fn samples_split_the_logprob_and_honour_stop_and_length() {
        let segments = alone("nlinarith [h]\nlinarith\n", -1.3);
        let s = render_sample(&segments, &params(128, &[]), false);
        assert_eq!(s.text, "nlinarith [h]\nlinarith\n");
        assert_eq!(s.finish, Finish::Eos);
        let sum: f64 = s.tokens.iter().map(|t| t.1).sum();
        assert!((sum - -1.3).abs() < 1e-12);
        let s = render_sample(&segments, &params(128, &["\n"]), false);
        assert_eq!(s.text, "nlinarith [h]");
        assert_eq!(s.finish, Finish::Stop("\n".into()));
        let s = render_sample(&segments, &params(2, &[]), false);
        assert_eq!((s.text.as_str(), s.finish), ("nlinarit", Finish::Length(2)));
    }

    /// SGLang decodes each logprob token alone (`detokenize_logprob_tokens`): a symbol split
    /// between byte-level tokens reads U+FFFD in each, though the text is whole.
    #[test]
    fn byte_tokens_split_symbols_into_replacement_characters() {
        let segments = alone("aaa⊢ x", -1.0);
        let s = render_sample(&segments, &params(128, &[]), true);
        assert_eq!(s.text, "aaa⊢ x");
        let texts: Vec<&str> = s.tokens.iter().map(|t| t.0.as_str()).collect();
        assert_eq!(texts, ["aaa\u{fffd}", "\u{fffd}\u{fffd} x"]);
        let mut s = render_sample(&segments, &params(128, &[]), true);
        s.abort();
        assert_eq!((s.text.as_str(), s.finish), ("aaa", Finish::Abort));
    }

    /// A DeepSeek-style prompt: inside an open Lean block, ending at a line start.
    const LEAN_PROMPT: &str = "Complete:\n\n```lean4\ntheorem t : p := by\n";

    #[test]
    fn inside_a_lean_block_the_model_writes_the_rest_of_the_proof_and_the_fence() {
        let p = Proposal {
            tactic: String::new(),
            completion: Some("have h : p := by\n    simp\n".into()),
            logprob: -1.0,
            rest: vec![
                ("subst h".into(), -0.5),
                ("refine ⟨?_, ?_⟩\n· rfl".into(), -0.25),
            ],
        };
        let s = render_sample(&p.segments(LEAN_PROMPT), &params(128, &[]), false);
        assert_eq!(
            s.text,
            "  have h : p := by\n    simp\n  subst h\n  refine ⟨?_, ?_⟩\n  · rfl\n```"
        );
        assert_eq!(s.finish, Finish::Eos);
        // Each tactic's own tokens carry its log-prob; the fence's carry none.
        let sum: f64 = s.tokens.iter().map(|t| t.1).sum();
        assert!((sum - -1.75).abs() < 1e-12);
        let first_tactic_end = "  have h : p := by\n    simp\n".len();
        let first: f64 = s
            .tokens
            .iter()
            .zip(&s.token_ends)
            .filter(|(_, &end)| end <= first_tactic_end)
            .map(|(t, _)| t.1)
            .sum();
        assert!((first - -1.0).abs() < 1e-12);
        // The proof template's stop (the fence) and a tactic template's ("\n\n" never
        // matches between tactics) cut as SGLang cuts.
        let fenced = render_sample(&p.segments(LEAN_PROMPT), &params(128, &["```"]), false);
        assert_eq!(fenced.text, s.text.trim_end_matches('`'));
        assert_eq!(fenced.finish, Finish::Stop("```".into()));
        // A stop inside the first tactic keeps all of its log-prob on what is left.
        let cut = render_sample(
            &p.segments(LEAN_PROMPT),
            &params(128, &["\n  subst"]),
            false,
        );
        assert_eq!(cut.text, "  have h : p := by\n    simp");
        assert!((cut.tokens.iter().map(|t| t.1).sum::<f64>() - -1.0).abs() < 1e-12);
        // max_new_tokens cuts the continuation too.
        let short = render_sample(&p.segments(LEAN_PROMPT), &params(3, &[]), false);
        assert_eq!(
            (short.text.as_str(), short.finish),
            ("  have h : p", Finish::Length(3))
        );
    }

    /// A line-start stop: the next line at column 2 or less, unless it is a `| alt` or `<;>`
    /// line, after a character of the sample (stepwise's first DeepSeek tactic stop).
    const TACTIC_END: &str = r"[^\n]\n {0,2}[^ \n|<]";

    /// SGLang searches the output so far after each token: a greedy pattern stops at the
    /// first token that completes any match, and `\A` is the start of the output.
    #[test]
    fn a_stop_regex_is_searched_in_the_output_so_far_after_each_token() {
        let segments = alone("a b b b\n", -1.0);
        let s = render_sample(&segments, &with_regex(128, &[], &["a.*b"]), false);
        assert_eq!(s.text, "a b ");
        let s = render_sample(&segments, &with_regex(128, &[], &[r"\Ab"]), false);
        assert_eq!((s.text.as_str(), s.finish), ("a b b b\n", Finish::Eos));
        let s = render_sample(&segments, &with_regex(128, &[], &[r"\Aa"]), false);
        assert_eq!(s.text, "a b ");
        // Byte-level tokens: the output so far ends in U+FFFD where a token cuts a symbol.
        let symbol = alone("abc⊢ x", -1.0);
        let s = render_sample(&symbol, &with_regex(128, &[], &["\u{fffd}"]), true);
        assert_eq!((s.text.as_str(), s.tokens.len()), ("abc", 1));
    }

    /// A world tactic of several lines is written as the rest of the proof is: each line at
    /// the proof's column plus its own indentation.
    #[test]
    fn a_multi_line_tactic_is_laid_out_at_the_proofs_column() {
        let p = Proposal {
            tactic: "calc a = b := h\n_ = c := by\n  simp".into(),
            completion: None,
            logprob: -1.0,
            rest: vec![("rfl".into(), -0.5)],
        };
        let text = |prompt: &str| {
            p.segments(prompt)
                .into_iter()
                .map(|s| s.0)
                .collect::<String>()
        };
        assert_eq!(
            text(LEAN_PROMPT),
            "  calc a = b := h\n  _ = c := by\n    simp\n  rfl\n```"
        );
        assert_eq!(
            text("```lean4\ntheorem t : p := by\n  "),
            "calc a = b := h\n  _ = c := by\n    simp\n  rfl\n```"
        );
        assert_eq!(text("⊢ p:::"), "calc a = b := h\n_ = c := by\n  simp\n");
    }

    /// A simulated server over a world that knows no theorem.
    fn worldless(options: SglangOptions) -> Sim {
        let world = World {
            modules: Vec::new(),
            theorems: Vec::new(),
        };
        Sim::new(&world, options, RequestLog::default())
    }

    #[tokio::test]
    async fn an_sglang_without_stop_regex_answers_a_plain_text_500() {
        let sim = worldless(SglangOptions {
            no_stop_regex: true,
            ..SglangOptions::default()
        });
        let body = |params: Value| json!({"text": "x", "sampling_params": params}).to_string();
        let Err(rejection) =
            generate_inner(&sim, body(json!({"stop_regex": ["x"]})).as_bytes()).await
        else {
            panic!("a request with stop_regex must fail");
        };
        let response = rejection.into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain"));
        let text = axum::body::to_bytes(response.into_body(), 1 << 10)
            .await
            .unwrap();
        assert_eq!(&text[..], b"Internal Server Error");
        assert!(
            generate_inner(&sim, body(json!({"stop": ["x"]})).as_bytes())
                .await
                .is_ok()
        );
    }

    #[test]
    fn a_stop_regex_ends_the_sample_after_its_match_and_keeps_it() {
        let p = Proposal {
            tactic: String::new(),
            completion: Some("have h : p := by\n    simp\n".into()),
            logprob: -1.0,
            rest: vec![("subst h".into(), -0.5)],
        };
        let s = render_sample(
            &p.segments(LEAN_PROMPT),
            &with_regex(128, &["```"], &[TACTIC_END]),
            false,
        );
        assert_eq!(s.text, "  have h : p := by\n    simp\n  su");
        assert_eq!(s.finish, Finish::StopRegex(TACTIC_END.into()));
        assert_eq!(
            s.native_finish(),
            json!({"type": "stop", "matched": TACTIC_END})
        );
        // `| alt` lines belong to the tactic; a stop string that matches first wins.
        let alts = alone(
            "induction n with\n  | zero => simp\n  | succ n ih => simp\nrfl",
            -1.0,
        );
        let s = render_sample(&alts, &with_regex(128, &[], &[TACTIC_END]), false);
        assert_eq!(
            s.text,
            "induction n with\n  | zero => simp\n  | succ n ih => simp\nrfl"
        );
        // A sample that starts with a line break is not cut at its first line.
        let blank_first = alone("\nnorm_num\nrfl", -1.0);
        let s = render_sample(&blank_first, &with_regex(128, &[], &[TACTIC_END]), false);
        assert_eq!(s.text, "\nnorm_num\nrf");
        // The closing fence completes both the regex and the stop string: the string wins.
        let p = Proposal {
            tactic: String::new(),
            completion: Some("norm_num\n".into()),
            logprob: -0.2,
            rest: Vec::new(),
        };
        let s = render_sample(
            &p.segments(LEAN_PROMPT),
            &with_regex(128, &["```"], &[TACTIC_END]),
            false,
        );
        assert_eq!(
            (s.text.as_str(), s.finish),
            ("  norm_num\n", Finish::Stop("```".into()))
        );
        let s = render_sample(&alts, &with_regex(128, &["\n"], &[TACTIC_END]), false);
        assert_eq!(
            (s.text.as_str(), s.finish),
            ("induction n with", Finish::Stop("\n".into()))
        );
        let bad = params_of(&json!({"stop_regex": "("}), "max_new_tokens", 128);
        assert!(bad.err().unwrap().starts_with("stop_regex \"(\""));
    }

    /// "  positivity\n" is 13 characters: its line break would be a token of its own.
    #[test]
    fn a_line_break_joins_the_tactics_last_token() {
        let p = Proposal {
            tactic: String::new(),
            completion: Some("positivity\n".into()),
            logprob: -0.9,
            rest: vec![("rfl".into(), -0.1)],
        };
        let whole = render_sample(&p.segments(LEAN_PROMPT), &params(128, &[]), false);
        let texts: Vec<&str> = whole.tokens.iter().map(|t| t.0.as_str()).collect();
        assert_eq!(texts, ["  po", "siti", "vity\n", "  rf", "l\n", "```"]);
        let line = render_sample(&p.segments(LEAN_PROMPT), &params(128, &["\n"]), false);
        let logprobs = |s: &Sample| s.tokens.iter().map(|t| t.1).collect::<Vec<_>>();
        assert_eq!(logprobs(&line), logprobs(&whole)[..3]);
        assert!((logprobs(&line).iter().sum::<f64>() + 0.9).abs() < 1e-12);
    }

    #[test]
    fn the_proof_column_is_the_prompts_and_step_prompts_get_one_tactic() {
        assert_eq!(proof_column(LEAN_PROMPT), Some(2));
        assert_eq!(proof_column("```lean4\ntheorem t : p := by\n    "), Some(4));
        // The chat template's user turn closes its block; the assistant turn reopens one.
        assert_eq!(
            proof_column("<｜User｜>```lean4\nx\n```<｜Assistant｜>```lean4\nx := by\n"),
            Some(2)
        );
        assert_eq!(proof_column("```lean4\nx\n```\nTACTIC: "), None);
        assert_eq!(proof_column("x : ℕ\n⊢ x = x:::"), None);
        let p = Proposal {
            tactic: String::new(),
            completion: Some("simp -- closes it".into()),
            logprob: -0.5,
            rest: vec![("rfl".into(), -0.1)],
        };
        // A completion without a newline ends its line before the rest.
        assert_eq!(
            p.segments("```lean4\ntheorem t : p := by\n  ")
                .iter()
                .map(|s| s.0.as_str())
                .collect::<String>(),
            "simp -- closes it\n  rfl\n```"
        );
        assert_eq!(p.segments("⊢ p:::"), [("simp -- closes it".into(), -0.5)]);
        // A world completion that closes the fence is the whole text.
        let closed = Proposal {
            tactic: String::new(),
            completion: Some("simp\n```".into()),
            ..p
        };
        assert_eq!(closed.segments(LEAN_PROMPT), [("  simp\n```".into(), -0.5)]);
    }

    #[test]
    fn prompts_get_the_bos_the_tokenizer_adds_and_the_one_they_write() {
        let world = World {
            modules: Vec::new(),
            theorems: Vec::new(),
        };
        let sim = |add_bos| {
            let options = SglangOptions {
                add_bos,
                ..SglangOptions::default()
            };
            Sim::new(&world, options, RequestLog::default())
        };
        let ids = |s: &Sim, p: &str| -> Vec<u64> {
            s.input_tokens(p, true).into_iter().map(|t| t.0).collect()
        };
        assert_eq!(ids(&sim(true), "abcdefg"), [BOS_ID, PIECE_ID, PIECE_ID + 1]);
        assert_eq!(ids(&sim(false), "abcdefg"), [PIECE_ID, PIECE_ID + 1]);
        let written = format!("{BOS_TEXT}abc");
        assert_eq!(ids(&sim(true), &written), [BOS_ID, BOS_ID, PIECE_ID]);
        assert_eq!(ids(&sim(false), &written), [BOS_ID, PIECE_ID]);
        assert_eq!(sim(true).prompt_tokens("abcdefg"), 3);
        assert_eq!(
            sim(true).input_token_logprobs("abcdefg", 0, true),
            json!([
                [null, BOS_ID, BOS_TEXT],
                [INPUT_LOGPROB, PIECE_ID, "abcd"],
                [INPUT_LOGPROB, PIECE_ID + 1, "efg"]
            ])
        );
        assert_eq!(
            sim(true).input_token_logprobs("abcdefg", 2, false),
            json!([[null, PIECE_ID + 1, null]])
        );
        assert_eq!(
            sim(true).input_token_logprobs("abcdefg", -1, true),
            json!([])
        );
    }

    #[test]
    fn dedent_matches_indented_states() {
        assert_eq!(
            dedent("  /- tactic state:\n    x : ℕ\n    ⊢ x = x\n  -/"),
            "/- tactic state:\nx : ℕ\n⊢ x = x\n-/"
        );
        assert_eq!(
            dedent(&join_goals(&["x : ℕ\n⊢ x = x".into()])),
            "x : ℕ\n⊢ x = x"
        );
    }

    #[tokio::test]
    async fn a_request_costs_a_fixed_part_its_longest_completion_and_its_prompts() {
        let sim = worldless(SglangOptions {
            delay_per_request: Duration::from_micros(100),
            delay_per_token: Duration::from_micros(10),
            delay_per_prompt: Duration::from_micros(1),
            ..SglangOptions::default()
        });
        // Two distinct prompts, one repeated: two prefills. Unknown states get the junk
        // tactic, whose completion is the longest (and only) one.
        let prompts: Vec<String> = ["a", "a", "b"].map(String::from).to_vec();
        let samples = sim.sample(&prompts, &params(128, &[]));
        let steps = samples.iter().map(|s| s.tokens.len()).max().unwrap() as u64;
        sim.delay(&prompts, &samples).await;
        assert_eq!(
            sim.gpu_time.total(),
            Duration::from_micros(100 + 10 * steps + 2)
        );
    }
}

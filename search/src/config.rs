//! The one `Config` type for every section of a stepwise TOML file.
//!
//! Every struct is `deny_unknown_fields`, so a misspelt key is an error that names the key,
//! the file and the line (toml's span). Defaults are tuned values, so an empty file is a
//! working config; docs/design.md ("Config") lists every key with its default and meaning.

use std::path::{Path, PathBuf};

pub use formats::search_mode::Expansion;
use formats::search_mode::SearchShape;
use lean_bridge::LeanConfig;
use serde::{Deserialize, Serialize};

use crate::banned::is_banned;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub search: SearchConfig,
    pub policy: PolicyConfig,
    pub lean: LeanConfig,
    pub ebm: EbmConfig,
    pub sweep: SweepConfig,
    pub planner: PlannerConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SearchConfig {
    /// Expanded nodes per theorem.
    pub max_nodes: usize,
    pub max_depth: usize,
    /// Nodes popped per expansion step; their prompts go out in one generate request.
    pub batch_expansion_size: usize,
    /// Samples asked of the policy per expanded node.
    pub num_candidates: usize,
    /// Seconds of wall time per theorem.
    pub timeout_per_theorem: f64,
    /// Weight `w` of `-energy / ebm_temperature` in the priority.
    pub ebm_weight: f64,
    pub ebm_temperature: f64,
    /// Standardise energies with the served head's own mean and std (`(energy - mean) /
    /// std`, from the EBM's `/health`) before the priority divides them by
    /// `ebm_temperature`, so `ebm_weight` means the same from one head to the next. A head
    /// without the figures is ranked by its raw energies, as with `false`.
    pub ebm_normalize: bool,
    /// Exponent of the depth normalisation of the cumulative log-prob.
    pub length_norm: f64,
    /// Whole Lean identifiers that disqualify a candidate tactic.
    pub banned_tactics: Vec<String>,
    /// What one expansion asks the policy for: the next tactic, or the rest of the proof.
    pub expansion: Expansion,
    /// Tactics tried in Lean on every new node before it is queued; one that closes every
    /// goal ends the theorem (through the whole-proof check) without a generate call.
    pub probe_tactics: Vec<String>,
    /// Seconds each probe tactic may run (a failing `nlinarith` can take seconds).
    pub probe_timeout: f64,
    /// While Lean checks an expansion's candidates, the generate request of the nodes the
    /// frontier would pop next is already in flight; it is used only if they are still the
    /// best once this expansion's children are queued, else dropped (the search order stays
    /// best-first). Off by default: a miss costs the server a request.
    pub speculate: bool,
    /// Subgoal decomposition: a `have h : P := …` step Lean refuses is sent again as
    /// `have h : P := by sorry`, and each such hole on a path whose goals close becomes a
    /// subgoal search of its own, in the same tree and budget (docs/design.md, "Subgoal
    /// decomposition").
    pub decompose: bool,
    /// The most holes on one path from the root.
    pub max_subgoals: usize,
}

impl SearchConfig {
    /// `Some(n)` when this config is the pass@n baseline (see [`SearchShape::pass_at_n`]).
    pub fn pass_at_n(&self) -> Option<usize> {
        SearchShape {
            expansion: self.expansion,
            max_nodes: self.max_nodes,
            num_candidates: self.num_candidates,
            probe_tactics: self.probe_tactics.clone(),
        }
        .pass_at_n()
    }
}

impl Default for SearchConfig {
    fn default() -> Self {
        Self {
            max_nodes: 600,
            max_depth: 50,
            batch_expansion_size: 1,
            num_candidates: 16,
            timeout_per_theorem: 600.0,
            ebm_weight: 0.0,
            ebm_temperature: 1.0,
            ebm_normalize: true,
            length_norm: 0.0,
            banned_tactics: vec!["sorry".into(), "admit".into()],
            expansion: Expansion::Tactic,
            probe_tactics: Vec::new(),
            probe_timeout: 5.0,
            speculate: false,
            decompose: false,
            max_subgoals: 3,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PolicyBackend {
    /// SGLang's native `/generate`.
    Sglang,
    /// OpenAI-compatible `/v1/completions` (vLLM, SGLang).
    Openai,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sampling {
    /// Repeat each prompt `num_candidates` times in the request (SGLang's advice).
    Repeat,
    /// Send each prompt once with `n = num_candidates`.
    N,
}

/// `[policy].bos`: who puts the model's BOS token in front of each prompt.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BosSetting {
    /// The server's tokenizer adds it (SGLang and vLLM tokenize with special tokens when the
    /// model's tokenizer config says so); the prompt text has none.
    #[default]
    Server,
    /// The prompt text starts with the BOS text, for a server whose tokenizer adds none.
    Template,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    pub backend: PolicyBackend,
    /// One or more servers; requests are spread across them.
    pub urls: Vec<String>,
    /// A built-in template name, or a custom template string containing `{state}`.
    pub template: String,
    pub sampling: Sampling,
    pub temperature: f64,
    pub top_p: f64,
    pub max_new_tokens: u32,
    /// Seconds before one HTTP request is abandoned (and retried).
    pub request_timeout: f64,
    /// Retries on connection errors, 429 and 5xx, with exponential backoff and jitter.
    pub max_retries: u32,
    /// Model name sent to OpenAI-compatible servers. Unset: the id the server lists at
    /// `GET /v1/models` (vLLM answers 404 to a name it does not serve).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The server's context in tokens, prompt and completion together. Unset: asked from the
    /// server at start (`/v1/models` `max_model_len`, SGLang `/get_model_info`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context_tokens: Option<u32>,
    /// Stop strings sent with every tactic request. Unset: the template's own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop: Option<Vec<String>>,
    /// SGLang's `stop_regex`, sent with every tactic request (not to OpenAI-compatible
    /// servers, which have none). Unset: the template's own; `[]` sends none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_regex: Option<Vec<String>>,
    /// Seconds to wait at start for servers that answer 503 or refuse connections (SGLang
    /// does both while it loads the model).
    pub startup_timeout: f64,
    /// `search.expansion = "proof"`: a built-in whole-proof template name, or a custom
    /// template string containing `{state}`.
    pub proof_template: String,
    /// `max_new_tokens` of whole-proof requests.
    pub proof_max_new_tokens: u32,
    /// Stop strings of whole-proof requests. Unset: the proof template's own (the closing
    /// code fence).
    pub proof_stop: Option<Vec<String>>,
    /// Who writes the BOS: the server's tokenizer, or the prompt text.
    pub bos: BosSetting,
    /// The policy model's Hugging Face directory (its `config.json`, `tokenizer_config.json`,
    /// `tokenizer.json`): where the BOS token's id and text are read. Unset: the start-up check
    /// knows no BOS id, and `bos = "template"` takes the BOS text of the template's family.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_dir: Option<String>,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            backend: PolicyBackend::Sglang,
            urls: vec!["http://127.0.0.1:30000".into()],
            template: "deepseek-tactic-state".into(),
            sampling: Sampling::Repeat,
            temperature: 1.3,
            top_p: 0.95,
            max_new_tokens: 128,
            request_timeout: 120.0,
            max_retries: 4,
            model: None,
            context_tokens: None,
            stop: None,
            stop_regex: None,
            startup_timeout: 600.0,
            proof_template: "deepseek-v2-proof".into(),
            proof_max_new_tokens: 1024,
            proof_stop: None,
            bos: BosSetting::Server,
            model_dir: None,
        }
    }
}

/// `[planner].backend`: the wire a planner is asked over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PlannerBackend {
    /// SGLang's native `/generate`.
    Sglang,
    /// OpenAI-compatible `/v1/completions` (vLLM, SGLang).
    Openai,
    /// OpenAI-compatible `/v1/chat/completions`: the server applies the model's chat
    /// template, so a reasoning model can plan (no log-probs come back).
    OpenaiChat,
}

/// `[planner]`: a model that writes proof sketches (`have … := by sorry` steps) whose sorries
/// become subgoal searches. Off while `urls` is empty.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PlannerConfig {
    pub urls: Vec<String>,
    pub backend: PlannerBackend,
    /// Model name sent to OpenAI-compatible servers. Unset: the id `GET /v1/models` lists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// `deepseek-v2-sketch`, `chat-sketch`, or a custom template with the policy's
    /// placeholders.
    pub template: String,
    /// Sketches asked per planned node.
    pub num_sketches: usize,
    pub max_new_tokens: u32,
    pub temperature: f64,
    pub top_p: f64,
    /// Seconds before one request is abandoned: reasoning answers are long.
    pub request_timeout: f64,
    pub max_retries: u32,
    /// Nodes at this depth or shallower are planned once, when first expanded (0: the root).
    pub max_depth: u32,
    /// The log-prob a sketch's node gets per rank (the first sketch one prior, the second two,
    /// ...): a chat model gives no log-probs to rank sketches by.
    pub prior: f64,
}

impl PlannerConfig {
    pub fn enabled(&self) -> bool {
        !self.urls.is_empty()
    }
}

impl Default for PlannerConfig {
    fn default() -> Self {
        Self {
            urls: Vec::new(),
            backend: PlannerBackend::Sglang,
            model: None,
            template: "deepseek-v2-sketch".into(),
            num_sketches: 4,
            max_new_tokens: 8192,
            temperature: 0.6,
            top_p: 0.95,
            request_timeout: 900.0,
            max_retries: 2,
            max_depth: 0,
            prior: -1.0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EbmConfig {
    /// Base URL of `stepwise ebm serve`; empty means no value model.
    pub url: String,
    pub request_timeout: f64,
    pub max_retries: u32,
}

impl Default for EbmConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            request_timeout: 60.0,
            max_retries: 4,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SweepConfig {
    /// Theorems searched at once; each holds one Lean session.
    pub concurrency: usize,
    /// When fewer theorems remain than slots, the running ones pop more nodes per expansion
    /// (their share of the free slots, see `engine::tail_width`) instead of leaving the
    /// generate server idle. Off by default: it changes which nodes the tail's theorems
    /// expand, so a sweep's results would depend on where it ends (shards, resumes).
    pub fill_tail: bool,
    /// `search.speculate`, but only in the tail (nothing queued, free slots), where the
    /// generate server has capacity no theorem claims, so a missed speculation costs no
    /// other theorem anything. On by default: it leaves the trees as they were and met the
    /// 2% idle target for 1–4% more requests (docs/performance.md, section 7).
    pub speculate_tail: bool,
}

impl Default for SweepConfig {
    fn default() -> Self {
        Self {
            concurrency: 10,
            fill_tail: false,
            speculate_tail: true,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// toml's message already names the key and shows the line.
    #[error("invalid config {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid override `{assignment}`: {message}")]
    Override { assignment: String, message: String },
    #[error("invalid config {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

impl Config {
    /// Reads a TOML file, applies `key.path=value` overrides (as given by `--set`), and
    /// checks the values.
    pub fn load(path: &Path, overrides: &[String]) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml_str(&text, path, overrides)
    }

    /// Parses TOML text; `origin` names the file in errors.
    pub fn from_toml_str(
        text: &str,
        origin: &Path,
        overrides: &[String],
    ) -> Result<Self, ConfigError> {
        let parse_err = |e: toml::de::Error| ConfigError::Parse {
            path: origin.to_owned(),
            message: e.to_string(),
        };
        let config: Config = if overrides.is_empty() {
            // Deserialise straight from the text so errors carry line numbers.
            toml::from_str(text).map_err(parse_err)?
        } else {
            let mut table: toml::Table = toml::from_str(text).map_err(parse_err)?;
            for assignment in overrides {
                apply_override(&mut table, assignment)?;
            }
            Config::deserialize(table).map_err(parse_err)?
        };
        config.validate().map_err(|message| ConfigError::Invalid {
            path: origin.to_owned(),
            message,
        })?;
        Ok(config)
    }

    /// Checks values serde cannot: ranges and non-empty lists.
    pub fn validate(&self) -> Result<(), String> {
        let s = &self.search;
        if s.batch_expansion_size == 0 {
            return Err("search.batch_expansion_size must be at least 1".into());
        }
        if s.num_candidates == 0 {
            return Err("search.num_candidates must be at least 1".into());
        }
        if !(0.0..=1.0).contains(&s.ebm_weight) {
            return Err(format!(
                "search.ebm_weight must be in [0, 1], got {}",
                s.ebm_weight
            ));
        }
        if s.ebm_temperature <= 0.0 {
            return Err("search.ebm_temperature must be positive".into());
        }
        if s.probe_timeout <= 0.0 {
            return Err("search.probe_timeout must be positive".into());
        }
        if let Some(probe) = s
            .probe_tactics
            .iter()
            .find(|t| is_banned(t, &s.banned_tactics))
        {
            return Err(format!(
                "search.probe_tactics: `{probe}` uses a banned identifier"
            ));
        }
        if s.timeout_per_theorem <= 0.0 {
            return Err("search.timeout_per_theorem must be positive".into());
        }
        if self.policy.urls.is_empty() {
            return Err("policy.urls must name at least one server".into());
        }
        for (key, urls) in [
            ("policy.urls", &self.policy.urls),
            ("planner.urls", &self.planner.urls),
        ] {
            if let Some(url) = urls.iter().find(|u| {
                let u = u.trim();
                !(u.starts_with("http://") || u.starts_with("https://"))
            }) {
                return Err(format!(
                    "{key}: `{url}` must start with http:// or https://"
                ));
            }
        }
        let p = &self.planner;
        if p.enabled() {
            if p.num_sketches == 0 {
                return Err("planner.num_sketches must be at least 1".into());
            }
            if p.request_timeout <= 0.0 {
                return Err("planner.request_timeout must be positive".into());
            }
            if p.prior > 0.0 {
                return Err(format!(
                    "planner.prior is a log-prob, so at most 0, got {}",
                    p.prior
                ));
            }
            if !s.decompose {
                return Err(
                    "[planner] needs search.decompose = true: a sketch's sorries are searched as subgoals"
                        .into(),
                );
            }
        }
        if self
            .policy
            .context_tokens
            .is_some_and(|c| c <= self.policy.max_new_tokens)
        {
            return Err("policy.context_tokens must be larger than policy.max_new_tokens".into());
        }
        if self.policy.startup_timeout < 0.0 {
            return Err("policy.startup_timeout must not be negative".into());
        }
        if self.lean.command.is_empty() {
            return Err("lean.command must not be empty".into());
        }
        if self.lean.workers == 0 {
            return Err("lean.workers must be at least 1".into());
        }
        if self.sweep.concurrency == 0 {
            return Err("sweep.concurrency must be at least 1".into());
        }
        if s.ebm_weight > 0.0 && self.ebm.url.is_empty() {
            return Err("search.ebm_weight > 0 needs ebm.url".into());
        }
        Ok(())
    }
}

/// `section.key=value`; the value is parsed as TOML, falling back to a bare string.
fn apply_override(table: &mut toml::Table, assignment: &str) -> Result<(), ConfigError> {
    let err = |message: String| ConfigError::Override {
        assignment: assignment.to_owned(),
        message,
    };
    let (path, raw) = assignment
        .split_once('=')
        .ok_or_else(|| err("expected key=value".into()))?;
    let value: toml::Value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_owned()));
    let keys: Vec<&str> = path.trim().split('.').collect();
    let (last, parents) = keys.split_last().expect("split yields at least one key");
    let mut cursor = table;
    for key in parents {
        cursor = cursor
            .entry(key.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .ok_or_else(|| err(format!("`{key}` is not a section")))?;
    }
    cursor.insert(last.to_string(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_tuned_defaults() {
        let c = Config::from_toml_str("", Path::new("x.toml"), &[]).unwrap();
        assert_eq!(c.search.max_nodes, 600);
        assert_eq!(c.search.num_candidates, 16);
        assert_eq!(c.policy.temperature, 1.3);
        assert_eq!(c.sweep.concurrency, 10);
        assert_eq!(c.search.banned_tactics, vec!["sorry", "admit"]);
    }

    #[test]
    fn misspelt_key_names_key_file_and_line() {
        let text = "[search]\nmax_nodes = 10\nnum_candidate = 8\n";
        let e = Config::from_toml_str(text, Path::new("bad.toml"), &[]).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("num_candidate"), "{msg}");
        assert!(msg.contains("bad.toml"), "{msg}");
        assert!(msg.contains("line 3"), "{msg}");
    }

    #[test]
    fn unknown_section_is_rejected() {
        let e = Config::from_toml_str("[serach]\n", Path::new("c.toml"), &[]).unwrap_err();
        assert!(e.to_string().contains("serach"));
    }

    #[test]
    fn overrides_apply_and_are_checked() {
        let c = Config::from_toml_str(
            "[search]\nmax_nodes = 10\n",
            Path::new("c.toml"),
            &[
                "search.max_nodes=20".into(),
                "policy.template=bfs-prover".into(),
            ],
        )
        .unwrap();
        assert_eq!(c.search.max_nodes, 20);
        assert_eq!(c.policy.template, "bfs-prover");
        let e = Config::from_toml_str("", Path::new("c.toml"), &["search.max_nodez=1".into()])
            .unwrap_err();
        assert!(e.to_string().contains("max_nodez"));
    }

    #[test]
    fn proof_expansion_with_one_node_and_no_probes_is_pass_at_n() {
        let c = Config::from_toml_str(
            "[search]\nexpansion = \"proof\"\nmax_nodes = 1\nnum_candidates = 32\n",
            Path::new("c.toml"),
            &[],
        )
        .unwrap();
        assert_eq!(c.search.pass_at_n(), Some(32));
        let probes = Config::from_toml_str(
            "[search]\nexpansion = \"proof\"\nmax_nodes = 1\nprobe_tactics = [\"simp\"]\n",
            Path::new("c.toml"),
            &[],
        )
        .unwrap();
        assert_eq!(probes.search.pass_at_n(), None);
        let e = Config::from_toml_str(
            "[search]\nexpansion = \"proofs\"\n",
            Path::new("c.toml"),
            &[],
        )
        .unwrap_err();
        assert!(e.to_string().contains("proofs"), "{e}");
        let e = Config::from_toml_str(
            "[search]\nprobe_tactics = [\"exact sorry\"]\n",
            Path::new("c.toml"),
            &[],
        )
        .unwrap_err();
        assert!(e.to_string().contains("probe_tactics"), "{e}");
    }

    #[test]
    fn out_of_range_values_are_rejected() {
        let e = Config::from_toml_str("[search]\nebm_weight = 2.0\n", Path::new("c.toml"), &[])
            .unwrap_err();
        assert!(e.to_string().contains("ebm_weight"));
    }
}

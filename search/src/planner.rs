//! The planner (`[planner]`): a model asked, once per planned node, for proof sketches whose
//! steps are `have … := by sorry`. The engine runs each sketch from the node's state as one
//! tactic block; its sorries become holes, searched as subgoals (see `engine::decompose`).
//! This module builds the planner's client (any of the three wires), its prompt, and reads a
//! sketch out of an answer.

use std::sync::Arc;

use crate::config::{PlannerBackend, PlannerConfig, PolicyBackend, PolicyConfig, Sampling};
use crate::policy::http_policy::HttpPolicy;
use crate::policy::openai::OpenAiCompletions;
use crate::policy::openai_chat::OpenAiChat;
use crate::policy::sglang::SglangGenerate;
use crate::policy::{Policy, PolicyError};
use crate::request_setup::RequestSetup;
use crate::templates::{PromptTemplate, Stops, TemplateError};

/// What the engine needs to plan: the client, the prompt and the settings.
pub struct Planner {
    pub client: Arc<dyn Policy>,
    pub template: PromptTemplate,
    pub config: PlannerConfig,
}

/// Why the `[planner]` section gives no planner.
#[derive(Debug, thiserror::Error)]
pub enum PlannerError {
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error("[planner]: {0}")]
    Client(#[from] PolicyError),
    #[error("[planner]: {0}")]
    Config(String),
}

/// The planner's template, checked against its wire: a template that writes DeepSeek's chat
/// markers itself cannot go through `/v1/chat/completions`, where the server adds its own.
pub fn planner_template(config: &PlannerConfig) -> Result<PromptTemplate, PlannerError> {
    let template = PromptTemplate::from_planner_config(&config.template)?;
    if config.backend == PlannerBackend::OpenaiChat && template.text().contains("<｜User｜>") {
        return Err(PlannerError::Config(format!(
            "template `{}` writes DeepSeek's chat markers itself; with backend = \"openai-chat\" \
             the server applies the model's chat template: use `chat-sketch` or a custom template",
            config.template
        )));
    }
    Ok(template)
}

/// The planner `config` describes, or `None` while `planner.urls` is empty.
pub fn build_planner(
    config: &PlannerConfig,
    startup_timeout: f64,
) -> Result<Option<Planner>, PlannerError> {
    if !config.enabled() {
        return Ok(None);
    }
    let template = planner_template(config)?;
    let policy = PolicyConfig {
        backend: match config.backend {
            PlannerBackend::Sglang => PolicyBackend::Sglang,
            PlannerBackend::Openai | PlannerBackend::OpenaiChat => PolicyBackend::Openai,
        },
        urls: config.urls.clone(),
        model: config.model.clone(),
        sampling: Sampling::N,
        temperature: config.temperature,
        top_p: config.top_p,
        max_new_tokens: config.max_new_tokens,
        request_timeout: config.request_timeout,
        max_retries: config.max_retries,
        startup_timeout,
        ..PolicyConfig::default()
    };
    // No stops: the answer runs to its end; its last Lean block is the sketch.
    let setup = RequestSetup {
        template: template.clone(),
        stops: Stops {
            strings: Vec::new(),
            regexes: Vec::new(),
        },
        max_new_tokens: config.max_new_tokens,
        context_tokens: None,
        bos_text: None,
        bos_token: None,
    };
    let client: Arc<dyn Policy> = match config.backend {
        PlannerBackend::Sglang => Arc::new(HttpPolicy::<SglangGenerate>::new(&policy, &setup)?),
        PlannerBackend::Openai => Arc::new(HttpPolicy::<OpenAiCompletions>::new(&policy, &setup)?),
        PlannerBackend::OpenaiChat => Arc::new(HttpPolicy::<OpenAiChat>::new(&policy, &setup)?),
    };
    Ok(Some(Planner {
        client,
        template,
        config: config.clone(),
    }))
}

/// The sketch in a planner's answer: the last ```` ```lean4 ```` (or ```` ```lean ````) block,
/// everything up to the theorem's `:= by` removed (the statement and any header the model
/// repeats), its lines dedented; then the tactics of `proof_before` (the node's path) the
/// block starts with, when the model wrote the proof so far again. `None` when the answer
/// has no such block or the block no proof after `:= by`.
pub fn sketch_of(answer: &str, declaration: &str, proof_before: &[String]) -> Option<String> {
    let open = answer
        .rmatch_indices("```lean")
        .map(|(at, _)| at)
        .find(|&at| {
            let rest = &answer[at + "```lean".len()..];
            rest.starts_with('\n') || rest.starts_with("4\n")
        })?;
    let block = &answer[open..];
    let block = &block[block.find('\n')? + 1..];
    let block = block.find("```").map_or(block, |end| &block[..end]);
    // The theorem's own declaration, else any (the model may rename it), else the start.
    let named = ["theorem ", "lemma "]
        .iter()
        .filter_map(|kw| block.find(&format!("{kw}{declaration}")))
        .min();
    let any = || {
        ["theorem ", "lemma ", "example"]
            .iter()
            .filter_map(|kw| block.find(kw))
            .min()
    };
    let body = &block[named.or_else(any).unwrap_or(0)..];
    let body = &body[body.find(":= by")? + ":= by".len()..];
    let mut lines: Vec<&str> = body.lines().collect();
    while lines.first().is_some_and(|l| l.trim().is_empty()) {
        lines.remove(0);
    }
    while lines.last().is_some_and(|l| l.trim().is_empty()) {
        lines.pop();
    }
    let margin = lines
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()?;
    let mut sketch: Vec<&str> = lines
        .iter()
        .map(|l| {
            if l.len() >= margin {
                &l[margin..]
            } else {
                l.trim_start()
            }
        })
        .collect();
    let before: Vec<&str> = proof_before.iter().flat_map(|t| t.lines()).collect();
    if !before.is_empty() && sketch.starts_with(&before) {
        sketch.drain(..before.len());
    }
    let sketch = sketch.join("\n").trim_end().to_owned();
    (!sketch.trim().is_empty()).then_some(sketch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sketch_is_the_last_lean_block_after_the_statement() {
        let answer = "### Proof plan\nUse AM-GM.\n\n```lean4\ntheorem t (a : ℝ) : a ^ 2 ≥ 0 := by\n  sorry\n```\n\
            Now the sketch:\n\n```lean4\nimport Mathlib\n\ntheorem t (a : ℝ) :\n    a ^ 2 ≥ 0 := by\n  have h : a * a ≥ 0 := by\n    sorry\n  nlinarith [h]\n```\n";
        assert_eq!(
            sketch_of(answer, "t", &[]).unwrap(),
            "have h : a * a ≥ 0 := by\n  sorry\nnlinarith [h]"
        );
        // A reasoning model's thinking comes first; only the final block counts.
        let answer = "<think>```lean\ntheorem t : x := by\n  simp\n```</think>\n```lean\ntheorem t : x := by\n  exact h\n```";
        assert_eq!(sketch_of(answer, "t", &[]).unwrap(), "exact h");
        assert_eq!(sketch_of("no code here", "t", &[]), None);
        assert_eq!(
            sketch_of("```lean4\ntheorem t : x := by\n```", "t", &[]),
            None,
            "no proof in the block"
        );
        // An unclosed final block (the answer ran out of tokens) still counts to its end.
        assert_eq!(
            sketch_of("```lean4\ntheorem t : x := by\n  omega", "t", &[]).unwrap(),
            "omega"
        );
    }

    #[test]
    fn a_sketch_below_the_root_drops_the_proof_so_far_the_model_wrote_again() {
        let answer =
            "```lean4\ntheorem t : p ∧ q := by\n  constructor\n  · exact hp\n  · sorry\n```";
        let before = vec!["constructor".to_owned()];
        assert_eq!(
            sketch_of(answer, "t", &before).unwrap(),
            "· exact hp\n· sorry"
        );
    }

    #[test]
    fn a_chat_template_with_deepseek_markers_is_refused_on_the_chat_wire() {
        let config = PlannerConfig {
            urls: vec!["http://127.0.0.1:1".into()],
            backend: PlannerBackend::OpenaiChat,
            ..PlannerConfig::default()
        };
        let e = planner_template(&config).unwrap_err().to_string();
        assert!(e.contains("chat-sketch"), "{e}");
        let chat = PlannerConfig {
            template: "chat-sketch".into(),
            ..config
        };
        assert!(planner_template(&chat).is_ok());
    }
}

//! Prompt templates: how a proof state becomes the text a policy model continues.
//!
//! A template is text with placeholders, substituted in one pass (so a `{name}` inside a goal
//! stays as it is):
//! - `{state}`: the goals, as the REPL prints them (joined by blank lines);
//! - `{name}`: the theorem's name;
//! - `{statement}`: the formal statement, ending in `:= by`;
//! - `{proof_before}`: the tactics applied so far, one a line;
//! - `{header}`: the imports/options the theorem runs under, without trailing newlines;
//! - `{file_header}`: the header as a Lean file starts with it: verbatim when it ends in a
//!   newline (dataset headers end in a blank line), else followed by a blank line;
//! - `{informal_prefix}`: the theorem's `informal_prefix` field (a `/-- ... -/` docstring
//!   line in DeepSeek's miniF2F files) verbatim, empty when absent;
//! - `{proof_before_indented}`, `{state_indented}`: the same, indented to sit inside a Lean
//!   proof (two spaces) or a comment in it (four spaces, blank lines included, as
//!   DeepSeek-Prover-V1.5 writes them), for code-embedded layouts;
//! - `{state_comment}`: DeepSeek-Prover-V1.5's `  /- tactic state: ... -/` comment of the
//!   node, ending in a newline; empty at the root, where V1.5 writes none.
//!
//! Any other `{...}` is kept literally (Lean code has braces).
//!
//! Each built-in template carries the stop strings (and, for SGLang, stop regexes) its model
//! needs to stop after one tactic (or, a whole-proof template, at the proof's end); which
//! template and stops a request carries is decided from the config in `request_setup.rs`.

use formats::theorems::Theorem;

/// A template shipped with stepwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuiltIn {
    pub name: &'static str,
    pub text: &'static str,
    /// Sent as the request's `stop` unless `[policy].stop` is set.
    pub stop: &'static [&'static str],
    /// Sent as SGLang's `stop_regex` unless `[policy].stop_regex` is set.
    pub stop_regex: &'static [&'static str],
}

/// What ends a DeepSeek tactic: the closing fence (V1.5's `post_process_output` cuts there),
/// a blank line, or the state comment the model writes after each tactic it was trained on.
const DEEPSEEK_STOP: &[&str] = &["```", "\n\n", "/- tactic state:"];

/// Where a DeepSeek tactic ends when the model goes on with the rest of the proof, as V2 does
/// (no stop string ends a plain next line): a line at the proof's column (two spaces) or
/// further left, once the tactic has begun, unless the layout joins it to the tactic.
/// SGLang searches the pattern in the output after each token (`schedule_batch.py`
/// `Req._check_str_based_finish`, `FINISHED_MATCHED_REGEX`) and keeps the matched text, since
/// its detokenizer trims only a literal match (`trim_matched_stop`), so a completion ends a
/// few characters into the next tactic and extraction cuts there. Piece by piece:
///
/// - `\A`, then blank lines, `--` comment lines and `/- … -/` comments (docstrings): the
///   tactic begins at the first other character, so a completion that opens with a comment
///   keeps its tactic. A comment line can only be told from its start, and `\A` is the start
///   of the output: SGLang searches the last `stop_regex_max_len + 1` tokens (`Req.tail_str`),
///   and `get_max_seq_length` (`sampling_params.py`) counts 2^30 for a `*` or a construct it
///   does not handle, so that is the whole output (as it was for the earlier
///   `[^\n]\n {0,2}[^ \n|<]`, whose `[^\n]` it does not handle).
/// - whole lines, then a line end not after a separator, open bracket or infix operator
///   ([`crate::candidates::LINE_CONTINUES_AFTER`], a lookbehind), then a line at column 0 to
///   2 that is not a `| alt`, `<;>`, `calc` step (`_ = …`), `,` or closing-bracket line, nor
///   a comment.
///
/// A line break inside brackets after anything else (`mul_pos ha\n  hb]`) still ends the
/// tactic there, and the cut-off tactic is dropped (`candidates_empty`): a regular expression
/// cannot count brackets.
///
/// Cost: for this pattern as for the earlier one, SGLang decodes the whole output after each
/// token and searches it. Whole lines (`.*\n`) and a lookbehind for the character before
/// the line break keep a search at or below the earlier pattern's cost; matched character by
/// character instead, it ran up to 3.6 times slower on a long line (docs/performance.md,
/// section 6). The lookbehind, like the earlier `[^\n]`, is a construct
/// `get_max_seq_length` does not handle, so SGLang logs "Got unhandled regex token" once per
/// request, as it did. The pattern stays under SGLang's 256-byte limit
/// (`MAX_STOP_REGEX_LEN`, 0.5.23).
pub const DEEPSEEK_TACTIC_END: &str = concat!(
    r"\A(?:\s|--.*\n|/-(?:[^/-]|/|-+[^/-])*-+/)*[^\s/-]",
    r"(?:.*\n)*?.*\n(?<![,(\[{⟨⦃+=<>:^≤≥≠∧∨→↔←∣∈∉⊆⊂∪∩•∘×¬]\n)",
    r" {0,2}[^ \n|<_,)\]}⟩/-]",
);

/// `deepseek-tactic-state` and `deepseek-v1.5-proof` (see [`BUILT_IN`]).
const DEEPSEEK_V15_TEXT: &str = concat!(
    "Complete the following Lean 4 code:\n\n",
    "```lean4\n{file_header}{informal_prefix}{statement}\n{proof_before_indented}{state_comment}"
);

/// `deepseek-v2-chat` and `deepseek-v2-proof` (see [`BUILT_IN`]).
const DEEPSEEK_V2_TEXT: &str = concat!(
    "<｜User｜>Complete the following Lean 4 code:\n\n",
    "```lean4\n{file_header}{informal_prefix}{statement}\n  sorry\n```",
    "<｜Assistant｜>",
    "```lean4\n{file_header}{informal_prefix}{statement}\n{proof_before_indented}{state_comment}"
);

/// The built-in templates by name. The first is the default.
pub const BUILT_IN: &[BuiltIn] = &[
    // DeepSeek-Prover-V1.5's non-CoT prompt byte for byte (deepseek-ai/DeepSeek-Prover-V1.5
    // @ 2c4ba91, `prover/utils.py` `non_cot_prompt`): `{header}{informal_prefix}{formal_statement}`
    // (the statement ends in `:= by\n`), then the tree-search node's `_extra_prompt`
    // (`prover/algorithms/rmax_tree_search.py`): the tactic code so far and the node's state
    // comment (`prover/lean/proof.py` `segmentation`), none at the root. It ends at a line
    // start: the model writes the indentation itself, as it did in training.
    BuiltIn {
        name: "deepseek-tactic-state",
        text: DEEPSEEK_V15_TEXT,
        stop: DEEPSEEK_STOP,
        stop_regex: &[DEEPSEEK_TACTIC_END],
    },
    // DeepSeek-Prover-V2-7B is a chat model: its tokenizer's chat template writes
    // `{bos}<｜User｜>{content}<｜Assistant｜>` (DeepSeek-V3 family template; U+FF5C and U+2581
    // in the markers). The user turn is V2's README prompt without the proof-plan paragraph
    // (the non-CoT form: the statement with `sorry` in a closed fence); the assistant turn is
    // pre-filled with the V1.5 Lean block up to the next tactic, so the model writes one.
    // No BOS text here: SGLang tokenizes `text` with the tokenizer's default
    // `add_special_tokens=True` (`tokenizer_manager.py` `_tokenize_texts`), which prepends
    // `<｜begin▁of▁sentence｜>` itself; writing it too would send two.
    BuiltIn {
        name: "deepseek-v2-chat",
        text: DEEPSEEK_V2_TEXT,
        stop: DEEPSEEK_STOP,
        stop_regex: &[DEEPSEEK_TACTIC_END],
    },
    // InternLM2.5-StepProver: the chat wrapper of InternLM-Math's evaluation script
    // (`chat_template_to_prompt`: `<|im_start|>user\n...<|im_end|>\n<|im_start|>assistant\n`)
    // around its `_prompt_function` body, whose `TACTIC: ` keeps its space before `<|im_end|>`.
    BuiltIn {
        name: "internlm-step-prover",
        text: concat!(
            "<|im_start|>user\n---\nNAME: {name}\n\n---\nPROOF_BEFORE: {proof_before}\n\n",
            "---\nSTATE_BEFORE: {state}\n\n---\nTACTIC: <|im_end|>\n<|im_start|>assistant\n"
        ),
        stop: &["<|im_end|>"],
        stop_regex: &[],
    },
    // BFS-Prover: the state, then `:::` (model card, as quoted by third-party harnesses);
    // the tactic ends at the end of the sequence or a blank line.
    BuiltIn {
        name: "bfs-prover",
        text: "{state}:::",
        stop: &["\n\n"],
        stop_regex: &[],
    },
];

/// Where a whole-proof continuation ends: the closing code fence (DeepSeek-Prover-V1.5
/// `post_process_output` cuts there; BurnQED sends `stop: ["```"]`).
const PROOF_STOP: &[&str] = &["```"];

/// The built-in whole-proof templates (`search.expansion = "proof"`,
/// `[policy].proof_template`). The prompts are the tactic ones (the model continues the Lean
/// block from the node); what differs is the stop: the model writes the rest of the proof, up
/// to the closing fence. The first is the default.
pub const PROOF_BUILT_IN: &[BuiltIn] = &[
    // DeepSeek-Prover-V2's chat framing with the assistant turn pre-filled up to the next
    // tactic, as BurnQED prompts its whole proofs (mike1729/BurnQED crates/policy/src/prompt.rs).
    BuiltIn {
        name: "deepseek-v2-proof",
        text: DEEPSEEK_V2_TEXT,
        stop: PROOF_STOP,
        stop_regex: &[],
    },
    // DeepSeek-Prover-V1.5's non-CoT prompt (`prover/utils.py` `non_cot_prompt`).
    BuiltIn {
        name: "deepseek-v1.5-proof",
        text: DEEPSEEK_V15_TEXT,
        stop: PROOF_STOP,
        stop_regex: &[],
    },
];

/// The built-in planner templates (`[planner].template`): a model writes a proof plan, then
/// the proof as a Lean sketch whose steps are `have … := by sorry`. No stops: the answer runs
/// to its end, and its last Lean block is the sketch. The first is the default.
pub const PLANNER_BUILT_IN: &[BuiltIn] = &[
    // DeepSeek-Prover-V2's chain-of-thought prompt (deepseek-ai/DeepSeek-Prover-V2 README:
    // the statement with `sorry` in a closed fence, then "Before producing the Lean 4 code to
    // formally prove the given theorem, provide a detailed proof plan ..."), in V2's chat
    // framing as `deepseek-v2-chat` writes it, with one more sentence asking for the proof
    // as a sketch of lemmas left with `sorry` (the form V2's own training data was cut into).
    // Below the root, the proof so far and the node's state are in the code.
    BuiltIn {
        name: "deepseek-v2-sketch",
        text: concat!(
            "<｜User｜>Complete the following Lean 4 code:\n\n",
            "```lean4\n{file_header}{informal_prefix}{statement}\n{proof_before_indented}{state_comment}  sorry\n```\n\n",
            "Before producing the Lean 4 code to formally prove the given theorem, provide a detailed proof plan outlining the main proof steps and strategies.\n",
            "The plan should highlight key ideas, intermediate lemmas, and proof structures that will guide the construction of the final formal proof.\n",
            "Then write the proof as a sketch: state each intermediate lemma with `have`, prove each with `sorry`, and close the goal from the lemmas.",
            "<｜Assistant｜>"
        ),
        stop: &[],
        stop_regex: &[],
    },
    // For a general reasoning model behind `/v1/chat/completions` (the server applies its chat
    // template): a sketch request in the style of DSP+'s (microsoft/DSP-Plus `dsp/sketch.py`:
    // the steps as `have` statements left unproved, many small lemmas, typed division and
    // subtraction), with `by sorry` as the placeholder.
    BuiltIn {
        name: "chat-sketch",
        text: concat!(
            "Prove the following Lean 4 theorem (Mathlib) as a proof sketch. Translate the steps of ",
            "an informal proof into a series of `have` statements, each proved with `by sorry`, ",
            "and close the goal from them: do not prove the `have` statements themselves. Prefer ",
            "many small lemmas, each easy to prove. Give the type of every division and ",
            "subtraction: `(1 : ℝ) / 2` is 0.5 but `(1 : ℕ) / 2` is 0, and `(1 : ℕ) - 2` is 0.\n\n",
            "End your answer with the whole sketch in one ```lean4 code block.\n\n",
            "```lean4\n{file_header}{informal_prefix}{statement}\n{proof_before_indented}{state_comment}  sorry\n```"
        ),
        stop: &[],
        stop_regex: &[],
    },
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error(
        "unknown prompt template `{name}`: use one of {} or a custom template containing {{state}}",
        BUILT_IN.iter().map(|t| format!("`{}`", t.name)).collect::<Vec<_>>().join(", ")
    )]
    Unknown { name: String },
    #[error(
        "unknown proof template `{name}`: use one of {} or a custom template containing {{state}}",
        PROOF_BUILT_IN.iter().map(|t| format!("`{}`", t.name)).collect::<Vec<_>>().join(", ")
    )]
    UnknownProof { name: String },
    #[error(
        "unknown planner template `{name}`: use one of {} or a custom template containing {{statement}} or {{state}}",
        PLANNER_BUILT_IN.iter().map(|t| format!("`{}`", t.name)).collect::<Vec<_>>().join(", ")
    )]
    UnknownPlanner { name: String },
}

/// What a prompt is made from: one node of one theorem's search.
#[derive(Debug, Clone, PartialEq)]
pub struct PromptInput<'a> {
    pub name: &'a str,
    pub header: &'a str,
    /// The formal statement ending in `:= by`.
    pub statement: String,
    /// The theorem's `informal_prefix`, or empty.
    pub informal_prefix: &'a str,
    /// Tactics from the root to this node (the oldest may have been dropped to fit the
    /// context, see [`PromptTemplate::render_within`]).
    pub proof_before: &'a [String],
    /// Whether this is the root (no tactic applied), which has no state comment.
    pub at_root: bool,
    /// The node's goals text.
    pub state: &'a str,
}

impl<'a> PromptInput<'a> {
    /// `header` is the one the theorem runs under (its own, or the config's).
    pub fn new(
        theorem: &'a Theorem,
        header: &'a str,
        proof_before: &'a [String],
        state: &'a str,
    ) -> Self {
        Self {
            name: &theorem.name,
            header,
            statement: format!("{} := by", theorem.statement_head()),
            informal_prefix: theorem
                .extra
                .get("informal_prefix")
                .and_then(serde_json::Value::as_str)
                .unwrap_or(""),
            proof_before,
            at_root: proof_before.is_empty(),
            state,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptTemplate {
    /// The built-in's name, or `custom`.
    name: &'static str,
    text: String,
    /// The built-in's stops; a custom template has no stop regex, and stop strings only as a
    /// whole-proof template (the closing fence).
    stops: Stops,
}

impl PromptTemplate {
    /// `[policy].template`: a built-in name, or a custom template containing `{state}`.
    pub fn from_config(template: &str) -> Result<Self, TemplateError> {
        Self::pick(template, BUILT_IN, &[]).ok_or_else(|| TemplateError::Unknown {
            name: template.to_owned(),
        })
    }

    /// The built-in of `built_ins` named `template`, or `template` itself as a custom one
    /// (with `custom_stop`) when it has a `{state}` to fill.
    fn pick(template: &str, built_ins: &[BuiltIn], custom_stop: &[&str]) -> Option<Self> {
        let (name, text, stop, stop_regex) =
            match built_ins.iter().find(|t| t.name == template.trim()) {
                Some(b) => (b.name, b.text, b.stop, b.stop_regex),
                None if template.contains("{state}") => ("custom", template, custom_stop, &[][..]),
                None => return None,
            };
        let owned = |texts: &[&str]| texts.iter().map(|s| (*s).to_owned()).collect();
        Some(Self {
            name,
            text: text.to_owned(),
            stops: Stops {
                strings: owned(stop),
                regexes: owned(stop_regex),
            },
        })
    }

    /// The built-in's name, or `custom`.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The template text, placeholders unfilled.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// This template with `text` before it (`policy.bos = "template"`: the model's BOS text).
    pub fn prefixed(mut self, text: &str) -> Self {
        self.text.insert_str(0, text);
        self
    }

    /// The stops the template's model needs, unless the config sets others.
    pub fn stops(&self) -> &Stops {
        &self.stops
    }

    /// `[policy].proof_template`: a built-in whole-proof name, or a custom template
    /// containing `{state}`.
    pub fn from_proof_config(template: &str) -> Result<Self, TemplateError> {
        Self::pick(template, PROOF_BUILT_IN, PROOF_STOP).ok_or_else(|| {
            TemplateError::UnknownProof {
                name: template.to_owned(),
            }
        })
    }

    /// `[planner].template`: a built-in planner name, or a custom template containing
    /// `{statement}` or `{state}`.
    pub fn from_planner_config(template: &str) -> Result<Self, TemplateError> {
        let unknown = || TemplateError::UnknownPlanner {
            name: template.to_owned(),
        };
        match Self::pick(template, PLANNER_BUILT_IN, &[]) {
            Some(t) => Ok(t),
            None if template.contains("{statement}") => Ok(Self {
                name: "custom",
                text: template.to_owned(),
                stops: Stops {
                    strings: Vec::new(),
                    regexes: Vec::new(),
                },
            }),
            None => Err(unknown()),
        }
    }

    pub fn render(&self, input: &PromptInput) -> String {
        let mut out = String::with_capacity(self.text.len() + input.state.len() * 2);
        let mut rest = self.text.as_str();
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let after = &rest[open..];
            match placeholder(after) {
                Some((key, len)) => {
                    push_value(&mut out, key, input);
                    rest = &after[len..];
                }
                None => {
                    out.push('{');
                    rest = &after[1..];
                }
            }
        }
        out.push_str(rest);
        out
    }

    /// [`Self::render`], dropping the oldest `proof_before` tactics while the prompt's
    /// [`estimate_tokens`] exceeds `max_tokens` (the server rejects longer prompts with a
    /// 400). The state is never dropped: a prompt still too long without any earlier tactic
    /// is returned whole, and the server's rejection then means "no candidates".
    pub fn render_within(&self, input: &PromptInput, max_tokens: Option<usize>) -> String {
        let mut prompt = self.render(input);
        let Some(max) = max_tokens else {
            return prompt;
        };
        let mut shorter = input.clone();
        while estimate_tokens(&prompt) > max && !shorter.proof_before.is_empty() {
            shorter.proof_before = &shorter.proof_before[1..];
            prompt = self.render(&shorter);
        }
        prompt
    }
}

/// Why a served model and a built-in template do not belong together, judged from the
/// model's name or path (`/v1/models` id, SGLang `/get_model_info` `model_path`): each
/// built-in, tactic or whole-proof, is the prompt of one model family. `None` when they fit,
/// or when the template is custom or not tied to one family.
pub fn model_mismatch(template: &str, served: &str) -> Option<String> {
    let name = served.to_lowercase().replace('_', "-");
    let has = |parts: &[&str]| parts.iter().all(|p| name.contains(p));
    let v15 = has(&["deepseek", "prover"]) && !has(&["v2"]);
    let (fits, family) = match template.trim() {
        "deepseek-tactic-state" => (v15, "DeepSeek-Prover-V1.5 (for V2 use `deepseek-v2-chat`)"),
        "deepseek-v1.5-proof" => (v15, "DeepSeek-Prover-V1.5 (for V2 use `deepseek-v2-proof`)"),
        "deepseek-v2-chat" | "deepseek-v2-proof" | "deepseek-v2-sketch" => {
            (has(&["deepseek", "prover", "v2"]), "DeepSeek-Prover-V2")
        }
        "internlm-step-prover" => (has(&["internlm", "step"]), "InternLM2.5-StepProver"),
        "bfs-prover" => (has(&["bfs"]), "BFS-Prover"),
        _ => return None,
    };
    (!fits).then(|| {
        format!("template `{template}` is the prompt of {family}, but the server serves `{served}`")
    })
}

/// What ends a completion, as requests carry it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stops {
    /// `stop`: literal strings, trimmed from the text by the server.
    pub strings: Vec<String>,
    /// SGLang's `stop_regex`: patterns matched on the text's tail, kept in the text.
    pub regexes: Vec<String>,
}

/// The prompt tokens that leave room for `max_new_tokens` in a context of `context_tokens`
/// (SGLang rejects `input + max_new_tokens > context`, vLLM the same, `serving_engine.py`).
pub fn prompt_budget(context_tokens: u32, max_new_tokens: u32) -> usize {
    context_tokens
        .saturating_sub(max_new_tokens)
        .saturating_sub(1) as usize
}

/// An upper estimate of the tokens `text` costs, for when no tokenizer is at hand: one token
/// per two ASCII bytes (BPE vocabularies of code models average three to four) and two per
/// other character (a math symbol missing from the vocabulary falls back to its UTF-8 bytes).
pub fn estimate_tokens(text: &str) -> usize {
    let (ascii, other) = text.chars().fold((0usize, 0usize), |(a, o), c| {
        if c.is_ascii() {
            (a + 1, o)
        } else {
            (a, o + 1)
        }
    });
    ascii.div_ceil(2) + 2 * other
}

const PLACEHOLDERS: &[&str] = &[
    "state",
    "name",
    "statement",
    "proof_before",
    "header",
    "file_header",
    "informal_prefix",
    "proof_before_indented",
    "state_indented",
    "state_comment",
];

/// The placeholder `text` starts with, and its length with braces.
fn placeholder(text: &str) -> Option<(&'static str, usize)> {
    let close = text.find('}')?;
    let key = &text[1..close];
    PLACEHOLDERS
        .iter()
        .find(|p| **p == key)
        .map(|p| (*p, close + 1))
}

fn push_value(out: &mut String, key: &str, input: &PromptInput) {
    match key {
        "state" => out.push_str(input.state),
        "name" => out.push_str(input.name),
        "statement" => out.push_str(input.statement.trim_end()),
        "proof_before" => out.push_str(&input.proof_before.join("\n")),
        "header" => out.push_str(input.header.trim_end()),
        "file_header" => {
            out.push_str(input.header);
            if !input.header.trim().is_empty() && !input.header.ends_with('\n') {
                out.push_str("\n\n");
            }
        }
        "informal_prefix" => out.push_str(input.informal_prefix),
        "proof_before_indented" => {
            for tactic in input.proof_before {
                for (i, line) in tactic.lines().enumerate() {
                    if i > 0 {
                        out.push('\n');
                    }
                    if !line.is_empty() {
                        out.push_str("  ");
                        out.push_str(line);
                    }
                }
                out.push('\n');
            }
        }
        "state_indented" => push_state_indented(out, input.state),
        "state_comment" => {
            // V1.5 `Proof.segmentation`: '\n<indent>'.join(['<indent>/- tactic state:',
            // '  ' + goal.replace('\n', '\n<indent>  '), '-/\n']) with the tactic's indent, 2.
            if !input.at_root {
                out.push_str("  /- tactic state:\n");
                push_state_indented(out, input.state);
                out.push_str("\n  -/\n");
            }
        }
        _ => unreachable!("placeholder() only yields known keys"),
    }
}

/// Every line of the state prefixed by four spaces, blank lines between goals included
/// (V1.5's `goal.replace('\n', newline_with_indent + '  ')`), no final newline.
fn push_state_indented(out: &mut String, state: &str) {
    out.push_str("    ");
    out.push_str(&state.replace('\n', "\n    "));
}
#[cfg(test)]
mod tests {
    use super::*;

    fn theorem() -> Theorem {
        Theorem {
            name: "mathd_algebra_10".into(),
            formal_statement: "theorem mathd_algebra_10 (x : ℝ) (h₀ : x = 2) : x + 1 = 3 := by\n"
                .into(),
            header: None,
            extra: Default::default(),
        }
    }

    const STATE: &str = "x : ℝ\nh₀ : x = 2\n⊢ x + 1 = 3";

    /// A theorem with every part DeepSeek-Prover-V1.5's `non_cot_prompt` joins (a header, an
    /// `informal_prefix` docstring, the statement), for the byte-for-byte prompts below.
    fn v15_theorem() -> Theorem {
        let mut extra = serde_json::Map::new();
        extra.insert("informal_prefix".into(), "/-- Show that 1+1=2 -/\n".into());
        Theorem {
            name: "foo".into(),
            formal_statement: "theorem foo : 1 + 1 = 2 := by\n".into(),
            header: Some("import Mathlib\n".into()),
            extra,
        }
    }

    fn deepseek() -> PromptTemplate {
        PromptTemplate::from_config("deepseek-tactic-state").unwrap()
    }

    /// Expected strings: DeepSeek-Prover-V1.5 @ 2c4ba91, `prover/utils.py` `non_cot_prompt`
    /// + `rmax_tree_search.py` `_extra_prompt` + `prover/lean/proof.py` state comments.
    #[test]
    fn deepseek_tactic_state_is_v15_non_cot_prompt_byte_for_byte() {
        let t = v15_theorem();
        let header = t.header_or("");
        let root = PromptInput::new(&t, header, &[], "⊢ 1 + 1 = 2");
        assert_eq!(
            deepseek().render(&root),
            "Complete the following Lean 4 code:\n\n```lean4\nimport Mathlib\n\
             /-- Show that 1+1=2 -/\ntheorem foo : 1 + 1 = 2 := by\n"
        );
        let before = ["norm_num".to_owned()];
        let node = PromptInput::new(&t, header, &before, "⊢ 1 + 1 = 2");
        assert_eq!(
            deepseek().render(&node),
            "Complete the following Lean 4 code:\n\n```lean4\nimport Mathlib\n\
             /-- Show that 1+1=2 -/\ntheorem foo : 1 + 1 = 2 := by\n  norm_num\n  \
             /- tactic state:\n    ⊢ 1 + 1 = 2\n  -/\n"
        );
        // Blank lines between goals become indent + 2 spaces, as V1.5 writes them.
        let two = "case inl\nh : p\n⊢ q\n\ncase inr\nh : r\n⊢ q";
        let node = PromptInput::new(&t, header, &before, two);
        assert!(deepseek().render(&node).ends_with(
            "  norm_num\n  /- tactic state:\n    case inl\n    h : p\n    ⊢ q\n    \n    \
             case inr\n    h : r\n    ⊢ q\n  -/\n"
        ));
    }

    #[test]
    fn deepseek_multi_line_tactics_keep_their_relative_indent() {
        let t = theorem();
        let before = vec![
            "subst h₀".to_owned(),
            "have h : (2:ℝ) = 2 := by\n  rfl".to_owned(),
        ];
        let input = PromptInput::new(&t, "import Mathlib\nimport Aesop", &before, STATE);
        assert_eq!(
            deepseek().render(&input),
            "Complete the following Lean 4 code:\n\n```lean4\nimport Mathlib\nimport Aesop\n\n\
             theorem mathd_algebra_10 (x : ℝ) (h₀ : x = 2) : x + 1 = 3 := by\n\
             \x20 subst h₀\n\
             \x20 have h : (2:ℝ) = 2 := by\n\
             \x20   rfl\n\
             \x20 /- tactic state:\n\
             \x20   x : ℝ\n\
             \x20   h₀ : x = 2\n\
             \x20   ⊢ x + 1 = 3\n\
             \x20 -/\n"
        );
    }

    /// Chat markers of the DeepSeek-V3 family template (U+FF5C, U+2581), no BOS text.
    #[test]
    fn deepseek_v2_chat_prefills_the_assistant_turn_up_to_the_tactic() {
        let t = v15_theorem();
        let before = ["norm_num".to_owned()];
        let input = PromptInput::new(&t, "import Mathlib\n", &before, "⊢ 1 + 1 = 2");
        let p = PromptTemplate::from_config("deepseek-v2-chat")
            .unwrap()
            .render(&input);
        assert_eq!(
            p,
            "<\u{ff5c}User\u{ff5c}>Complete the following Lean 4 code:\n\n```lean4\n\
             import Mathlib\n/-- Show that 1+1=2 -/\ntheorem foo : 1 + 1 = 2 := by\n  sorry\n```\
             <\u{ff5c}Assistant\u{ff5c}>```lean4\nimport Mathlib\n/-- Show that 1+1=2 -/\n\
             theorem foo : 1 + 1 = 2 := by\n  norm_num\n  /- tactic state:\n    ⊢ 1 + 1 = 2\n  -/\n"
        );
        assert!(!p.contains("begin\u{2581}of\u{2581}sentence"));
    }

    #[test]
    fn internlm_has_the_chat_wrapper_and_bfs_the_bare_state() {
        let t = theorem();
        let before = vec!["norm_num".to_owned(), "linarith".to_owned()];
        let input = PromptInput::new(&t, "", &before, STATE);
        let p = PromptTemplate::from_config("internlm-step-prover")
            .unwrap()
            .render(&input);
        assert_eq!(
            p,
            "<|im_start|>user\n---\nNAME: mathd_algebra_10\n\n---\nPROOF_BEFORE: norm_num\nlinarith\n\n\
             ---\nSTATE_BEFORE: x : ℝ\nh₀ : x = 2\n⊢ x + 1 = 3\n\n---\nTACTIC: <|im_end|>\n\
             <|im_start|>assistant\n"
        );
        let p = PromptTemplate::from_config("bfs-prover")
            .unwrap()
            .render(&input);
        assert_eq!(p, format!("{STATE}:::"));
    }

    #[test]
    fn every_built_in_has_stop_strings_and_custom_ones_have_none() {
        for built_in in BUILT_IN {
            let t = PromptTemplate::from_config(built_in.name).unwrap();
            assert!(!t.stops().strings.is_empty(), "{}", built_in.name);
            assert_eq!(t.name(), built_in.name);
        }
        assert_eq!(
            PromptTemplate::from_config("internlm-step-prover")
                .unwrap()
                .stops()
                .strings,
            ["<|im_end|>"]
        );
        let custom = PromptTemplate::from_config("{state}").unwrap();
        assert_eq!(custom.name(), "custom");
        assert_eq!(
            custom.stops(),
            &Stops {
                strings: Vec::new(),
                regexes: Vec::new()
            }
        );
    }

    /// SGLang 0.5.23 answers 400 to a longer pattern (`sampling_params.py`,
    /// `MAX_STOP_REGEX_LEN`, counted in UTF-8 bytes).
    #[test]
    fn built_in_stop_regexes_fit_sglangs_limit() {
        for built_in in BUILT_IN {
            for pattern in built_in.stop_regex {
                assert!(
                    pattern.len() <= 256,
                    "{}: {} bytes",
                    built_in.name,
                    pattern.len()
                );
            }
        }
    }

    #[test]
    fn render_within_drops_the_oldest_tactics_first_and_keeps_the_state() {
        let t = theorem();
        let before: Vec<String> = (0..40)
            .map(|i| format!("have h{i} : {i} = {i} := rfl"))
            .collect();
        let input = PromptInput::new(&t, "", &before, STATE);
        let full = deepseek().render(&input);
        assert_eq!(deepseek().render_within(&input, None), full);
        let budget = estimate_tokens(&full) / 2;
        let short = deepseek().render_within(&input, Some(budget));
        assert!(estimate_tokens(&short) <= budget, "{short}");
        assert!(!short.contains("have h0 :"), "{short}");
        assert!(short.contains("have h39 : 39 = 39 := rfl\n  /- tactic state:"));
        assert!(short.contains("⊢ x + 1 = 3"));
        // Too long even without tactics: the state stays, the comment too.
        let tiny = deepseek().render_within(&input, Some(1));
        assert!(!tiny.contains("have h"));
        assert!(tiny.contains("/- tactic state:"));
    }

    #[test]
    fn token_estimate_is_above_real_tokenizers() {
        // DeepSeek's tokenizer spends about 10 tokens on this line; the estimate is above.
        assert_eq!(estimate_tokens("theorem foo : 1 + 1 = 2 := by"), 15);
        assert_eq!(estimate_tokens("⊢ ℝ"), 2 + 1 + 2);
    }

    #[test]
    fn served_models_are_matched_to_their_templates() {
        assert_eq!(
            model_mismatch("deepseek-v2-chat", "deepseek-ai/DeepSeek-Prover-V2-7B"),
            None
        );
        assert_eq!(
            model_mismatch("deepseek-tactic-state", "/models/DeepSeek-Prover-V1.5-RL"),
            None
        );
        assert_eq!(
            model_mismatch("internlm-step-prover", "internlm/internlm2_5-step-prover"),
            None
        );
        let w =
            model_mismatch("deepseek-tactic-state", "deepseek-ai/DeepSeek-Prover-V2-7B").unwrap();
        assert!(w.contains("deepseek-v2-chat"), "{w}");
        assert!(model_mismatch("bfs-prover", "internlm/internlm2_5-step-prover").is_some());
        assert_eq!(model_mismatch("{state}", "anything"), None);
        // The whole-proof templates are the same families' prompts.
        assert_eq!(
            model_mismatch("deepseek-v2-proof", "deepseek-ai/DeepSeek-Prover-V2-7B"),
            None
        );
        let w = model_mismatch("deepseek-v1.5-proof", "deepseek-ai/DeepSeek-Prover-V2-7B").unwrap();
        assert!(w.contains("deepseek-v2-proof"), "{w}");
        assert!(model_mismatch("deepseek-v2-proof", "/models/DeepSeek-Prover-V1.5-RL").is_some());
    }

    #[test]
    fn custom_templates_substitute_once_and_keep_other_braces() {
        let t = theorem();
        let state = "f : {x // x > 0} → ℕ\n⊢ {name} = 1";
        let input = PromptInput::new(&t, "", &[], state);
        let p = PromptTemplate::from_config("[{name}] {x} {state} {")
            .unwrap()
            .render(&input);
        assert_eq!(p, format!("[mathd_algebra_10] {{x}} {state} {{"));
    }

    #[test]
    fn unknown_name_is_an_error_naming_it() {
        let e = PromptTemplate::from_config("deepseek-v9").unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("`deepseek-v9`"), "{msg}");
        assert!(msg.contains("bfs-prover"), "{msg}");
        assert!(msg.contains("deepseek-v2-chat"), "{msg}");
    }

    #[test]
    fn statement_without_proof_gets_by() {
        let mut t = theorem();
        t.formal_statement = "theorem t : 1 = 1".into();
        let input = PromptInput::new(&t, "", &[], "⊢ 1 = 1");
        let p = PromptTemplate::from_config("{statement}|{state}")
            .unwrap()
            .render(&input);
        assert_eq!(p, "theorem t : 1 = 1 := by|⊢ 1 = 1");
    }

    #[test]
    fn proof_templates_are_the_tactic_prompts_with_the_fence_as_stop() {
        let v15 = PromptTemplate::from_proof_config("deepseek-v1.5-proof").unwrap();
        let tactic = PromptTemplate::from_config("deepseek-tactic-state").unwrap();
        assert_eq!(v15.text(), tactic.text());
        assert_eq!(v15.stops().strings, ["```"]);
        assert!(v15.stops().regexes.is_empty());
        let v2 = PromptTemplate::from_proof_config("deepseek-v2-proof").unwrap();
        assert_eq!(
            v2.text(),
            PromptTemplate::from_config("deepseek-v2-chat")
                .unwrap()
                .text()
        );
        assert_eq!(v2.name(), "deepseek-v2-proof");
        let custom = PromptTemplate::from_proof_config("{state}!").unwrap();
        assert_eq!(custom.stops().strings, ["```"]);
        assert!(custom.stops().regexes.is_empty());
        let e = PromptTemplate::from_proof_config("deepseek-tactic-state").unwrap_err();
        assert!(e.to_string().contains("deepseek-v2-proof"), "{e}");
    }
}

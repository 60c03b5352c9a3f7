//! Prompt templates: how a proof state becomes the text a policy model continues.
//!
//! A template is text with placeholders, substituted in one pass (so a `{name}` inside a goal
//! stays as it is):
//! - `{state}`: the goals, as the REPL prints them (joined by blank lines);
//! - `{name}`: the theorem's name;
//! - `{statement}`: the formal statement, ending in `:= by`;
//! - `{proof_before}`: the tactics applied so far, one a line;
//! - `{header}`: the imports/options the theorem runs under;
//! - `{proof_before_indented}`, `{state_indented}`: the same, indented to sit inside a Lean
//!   proof (two spaces) or a comment in it (four spaces), for code-embedded layouts.
//!
//! Any other `{...}` is kept literally (Lean code has braces).

use lean_bridge::Theorem;

/// The built-in templates by name. The first is the default.
pub const BUILT_IN: &[(&str, &str)] = &[
    // DeepSeek-Prover-V1.5/V2: the model continues a Lean 4 file in which the current tactic
    // state is a `/- tactic state: ... -/` comment; the prompt ends where the next tactic goes.
    (
        "deepseek-tactic-state",
        "Complete the following Lean 4 code:\n\n```lean4\n{header}\n\n{statement}\n\
         {proof_before_indented}  /- tactic state:\n{state_indented}\n  -/\n  ",
    ),
    // InternLM2.5-StepProver (model card and its evaluation code).
    (
        "internlm-step-prover",
        "---\nNAME: {name}\n\n---\nPROOF_BEFORE: {proof_before}\n\n---\nSTATE_BEFORE: {state}\n\n---\nTACTIC: ",
    ),
    // BFS-Prover: the state, then `:::`.
    ("bfs-prover", "{state}:::"),
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error(
        "unknown prompt template `{name}`: use one of {} or a custom template containing {{state}}",
        BUILT_IN.iter().map(|(n, _)| format!("`{n}`")).collect::<Vec<_>>().join(", ")
    )]
    Unknown { name: String },
}

/// What a prompt is made from: one node of one theorem's search.
#[derive(Debug, Clone, PartialEq)]
pub struct PromptInput<'a> {
    pub name: &'a str,
    pub header: &'a str,
    /// The formal statement ending in `:= by`.
    pub statement: String,
    /// Tactics from the root to this node.
    pub proof_before: &'a [String],
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
            proof_before,
            state,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptTemplate {
    text: String,
}

impl PromptTemplate {
    /// `[policy].template`: a built-in name, or a custom template containing `{state}`.
    pub fn from_config(template: &str) -> Result<Self, TemplateError> {
        if let Some((_, text)) = BUILT_IN.iter().find(|(name, _)| *name == template.trim()) {
            return Ok(Self {
                text: (*text).to_owned(),
            });
        }
        if template.contains("{state}") {
            return Ok(Self {
                text: template.to_owned(),
            });
        }
        Err(TemplateError::Unknown {
            name: template.to_owned(),
        })
    }

    /// The template text, placeholders unfilled.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The built-in name `[policy].template` picks, or `custom`.
    pub fn name_of(template: &str) -> &str {
        BUILT_IN
            .iter()
            .find(|(name, _)| *name == template.trim())
            .map_or("custom", |(name, _)| name)
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
}

const PLACEHOLDERS: &[&str] = &[
    "state",
    "name",
    "statement",
    "proof_before",
    "header",
    "proof_before_indented",
    "state_indented",
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
        "proof_before_indented" => {
            for tactic in input.proof_before {
                push_indented(out, tactic, "  ");
                out.push('\n');
            }
        }
        "state_indented" => push_indented(out, input.state, "    "),
        _ => unreachable!("placeholder() only yields known keys"),
    }
}

/// Every line of `text` prefixed by `indent` (empty lines stay empty), no final newline.
fn push_indented(out: &mut String, text: &str, indent: &str) {
    for (i, line) in text.lines().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        if !line.is_empty() {
            out.push_str(indent);
            out.push_str(line);
        }
    }
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

    #[test]
    fn deepseek_default_ends_where_the_next_tactic_goes() {
        let t = theorem();
        let before = vec![
            "subst h₀".to_owned(),
            "have h : (2:ℝ) = 2 := by\n  rfl".to_owned(),
        ];
        let input = PromptInput::new(&t, "import Mathlib\nimport Aesop\n", &before, STATE);
        let p = PromptTemplate::from_config(BUILT_IN[0].0)
            .unwrap()
            .render(&input);
        assert_eq!(
            p,
            "Complete the following Lean 4 code:\n\n```lean4\nimport Mathlib\nimport Aesop\n\n\
             theorem mathd_algebra_10 (x : ℝ) (h₀ : x = 2) : x + 1 = 3 := by\n\
             \x20 subst h₀\n\
             \x20 have h : (2:ℝ) = 2 := by\n\
             \x20   rfl\n\
             \x20 /- tactic state:\n\
             \x20   x : ℝ\n\
             \x20   h₀ : x = 2\n\
             \x20   ⊢ x + 1 = 3\n\
             \x20 -/\n  "
        );
    }

    #[test]
    fn internlm_and_bfs_formats() {
        let t = theorem();
        let before = vec!["norm_num".to_owned(), "linarith".to_owned()];
        let input = PromptInput::new(&t, "", &before, STATE);
        let p = PromptTemplate::from_config("internlm-step-prover")
            .unwrap()
            .render(&input);
        assert_eq!(
            p,
            "---\nNAME: mathd_algebra_10\n\n---\nPROOF_BEFORE: norm_num\nlinarith\n\n\
             ---\nSTATE_BEFORE: x : ℝ\nh₀ : x = 2\n⊢ x + 1 = 3\n\n---\nTACTIC: "
        );
        let p = PromptTemplate::from_config("bfs-prover")
            .unwrap()
            .render(&input);
        assert_eq!(p, format!("{STATE}:::"));
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
}

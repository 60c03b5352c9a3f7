//! A scripted Lean world: the shared script of the simulated REPL ([`crate::repl`]) and the
//! simulated SGLang server ([`crate::sglang`]). Both are test doubles that speak the real
//! protocols; this file only says what is true in the simulation.
//!
//! A state is a list of goal strings. At each known state a few tactics do something (their
//! `effect`); every other tactic fails with a Lean-style error. Each tactic also carries the
//! log-prob the simulated model gives it, so the simulated SGLang proposes them.

use std::collections::HashMap;

use formats::join_goals;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct World {
    /// Modules the simulated `import` accepts; importing anything else fails as Lean does.
    #[serde(default = "default_modules")]
    pub modules: Vec<String>,
    pub theorems: Vec<WorldTheorem>,
}

/// What a world accepts to import when its file names nothing.
pub fn default_modules() -> Vec<String> {
    ["Mathlib", "Aesop", "Init", "Lean", "Std"]
        .map(String::from)
        .to_vec()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorldTheorem {
    pub name: String,
    /// As in the theorems file (ends in `:= by`).
    pub formal_statement: String,
    /// Goals at the root.
    pub root: Vec<String>,
    pub states: Vec<WorldState>,
    /// What the simulated planner writes for this theorem (prompts asking for a sketch):
    /// each a proof body after `:= by` at column 0, its lemmas left with `sorry`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sketches: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorldState {
    pub goals: Vec<String>,
    pub tactics: Vec<WorldTactic>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorldTactic {
    /// The tactic as Lean receives it (after extraction and whitespace normalisation).
    pub tactic: String,
    /// Total log-prob the simulated model gives this completion at this state.
    pub logprob: f64,
    /// What the simulated model emits, if not just the tactic: lets tests send code fences,
    /// trailing comments or a second tactic that extraction must cut. Inside a Lean block the
    /// simulated SGLang goes on with the rest of the proof on the next line, unless this text
    /// closes the fence itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion: Option<String>,
    pub effect: Effect,
    /// Axioms beyond the default ones a proof using this tactic depends on
    /// (e.g. `Lean.ofReduceBool` for `native_decide`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub axioms: Vec<String>,
}

impl WorldTactic {
    /// A tactic the model emits as it is, with only the default axioms.
    pub fn new(tactic: impl Into<String>, logprob: f64, effect: Effect) -> Self {
        WorldTactic {
            tactic: tactic.into(),
            logprob,
            completion: None,
            effect,
            axioms: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// New goals; `[]` means `proofStatus: "Completed"`.
    Goals(Vec<String>),
    /// New goals, and goals the tactic admitted with `sorry` (e.g. `have h : p := sorry`):
    /// the answer carries them in `sorries`, without positions, as tactic mode does.
    Admits {
        goals: Vec<String>,
        sorries: Vec<String>,
    },
    /// An error-severity message in `messages` (the REPL still returns a proof state).
    Error(String),
    /// A `have NAME : P := PROOF` whose statement is right but whose proof fails with this
    /// error. The same `have` with a proof that works (`by sorry`, or a script that closes
    /// `P` in this world) adds `NAME : P` as any `have` does ([`have_step`]), and the
    /// simulated model, which believes its lemma, writes on from there.
    HaveFails(String),
    /// A thrown error: `{"message": "Lean error:\n..."}`.
    Throw(String),
    /// `goals: []` with this `proofStatus`, e.g. `"Incomplete: contains metavariable(s)"`.
    Incomplete(String),
    /// New goals, if Lean's heartbeat budget allows this many: tactic mode always runs at
    /// the default 200000 (repl issue #69), a command at the header's `maxHeartbeats`.
    Heavy { heartbeats: u64, goals: Vec<String> },
    /// Closes the proof, but tactic mode answers `goals: []` with this wrong `proofStatus`
    /// (repl PR #82 fixed one such case: valid proofs using local hypotheses were rejected);
    /// the whole-proof check accepts the proof.
    Misreported(String),
    /// Leaves no goals, but the term is no proof, as when a theorem applies itself (`apply ex`
    /// in `theorem ex`, repl issue #44): tactic mode answers `goals: []` with `status` as its
    /// `proofStatus` (the repl's kernel check of the term, repl PR #63), and the whole proof
    /// as a command gets Lean's `error` on the declaration's name
    /// (repl `test/self_proof_apply_check`).
    Unsound { status: String, error: String },
    /// Never answers.
    Hang,
}

/// A `have NAME : P := BODY` read against the goals it is sent at: what Lean does with any
/// `have`, whatever the world says of the tactic text.
#[derive(Debug, Clone, PartialEq)]
pub struct HaveStep {
    /// The have's own goal, `P` in the main goal's context (what a `sorry` in BODY admits).
    pub goal: String,
    /// The goals after it: `NAME : P` added to the main goal's context.
    pub goals: Vec<String>,
    /// The proof after `:=`, trimmed.
    pub body: String,
}

/// `tactic` as a `have NAME : P := BODY` (or `have : P := BODY`, naming `this`) at `goals`;
/// `None` for any other tactic, or when there is no goal.
pub fn have_step(goals: &[String], tactic: &str) -> Option<HaveStep> {
    let head = lean_bridge::one_tactic::have_head(tactic)?;
    let body = tactic.trim_start()[head.len()..]
        .trim_start()
        .strip_prefix(":=")?;
    let (name, ty) = head.strip_prefix("have")?.split_once(':')?;
    let name = match name.trim() {
        "" => "this",
        name if name.contains(char::is_whitespace) => return None,
        name => name,
    };
    let ty = ty.split_whitespace().collect::<Vec<_>>().join(" ");
    let (main, rest) = goals.split_first()?;
    let (context, target) = match main.rfind("⊢ ") {
        Some(at) => (&main[..at], &main[at..]),
        None => ("", main.as_str()),
    };
    let mut after = vec![format!("{context}{name} : {ty}\n{target}")];
    after.extend(rest.iter().cloned());
    Some(HaveStep {
        goal: format!("{context}⊢ {ty}"),
        goals: after,
        body: body.trim().to_owned(),
    })
}

impl World {
    pub fn theorem(&self, name: &str) -> Option<&WorldTheorem> {
        self.theorems.iter().find(|t| t.name == name)
    }

    /// Every known state across theorems, keyed by [`join_goals`].
    pub fn state_index(&self) -> HashMap<String, &WorldState> {
        self.theorems
            .iter()
            .flat_map(|t| t.states.iter())
            .map(|s| (join_goals(&s.goals), s))
            .collect()
    }
}

/// The most tactics a simulated continuation writes (worlds may have cycles).
pub const MAX_CONTINUATION: usize = 32;

impl World {
    /// What the simulated model writes after `tactic` at `goals`, as DeepSeek-Prover
    /// writes the rest of the proof: at each state it reaches, that state's most likely
    /// tactic, until the goals are closed, a tactic fails (it is written, then the model
    /// stops), or the state is one the world does not know.
    /// A failing `have` whose statement is right ([`Effect::HaveFails`]) is written and the
    /// model goes on from the goals it would give.
    pub fn rest_of_proof(&self, goals: &[String], tactic: &WorldTactic) -> Vec<&WorldTactic> {
        let index = self.state_index();
        let mut rest = Vec::new();
        let (mut goals, mut tactic) = (goals.to_vec(), tactic);
        while rest.len() < MAX_CONTINUATION {
            goals = match &tactic.effect {
                Effect::Goals(next) => next.clone(),
                Effect::HaveFails(_) => match have_step(&goals, &tactic.tactic) {
                    Some(have) => have.goals,
                    None => break,
                },
                _ => break,
            };
            if goals.is_empty() {
                break;
            }
            // The first of equally likely tactics, as the simulated SGLang ranks them.
            let Some(best) = index.get(&join_goals(&goals)).and_then(|s| {
                s.tactics
                    .iter()
                    .reduce(|best, t| if t.logprob > best.logprob { t } else { best })
            }) else {
                break;
            };
            rest.push(best);
            tactic = best;
        }
        rest
    }
}

impl WorldTheorem {
    /// The theorem as a theorems file lists it (no header of its own).
    pub fn input(&self) -> formats::theorems::Theorem {
        formats::theorems::Theorem {
            name: self.name.clone(),
            formal_statement: self.formal_statement.clone(),
            header: None,
            extra: Default::default(),
        }
    }

    pub fn state(&self, goals: &[String]) -> Option<&WorldState> {
        self.states.iter().find(|s| s.goals == goals)
    }
}

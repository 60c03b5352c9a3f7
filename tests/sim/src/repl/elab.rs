//! The simulated Lean behind the fake REPL: environments and proof states over a
//! [`World`], answering `cmd` and `tactic` requests with the REPL's response shapes.

use std::collections::HashMap;

use serde_json::Value;

use crate::world::{have_step, Effect, HaveStep, World, WorldTheorem};
use formats::theorems::{declaration_name, declaration_name_span, statement_head};
use lean_bridge::one_tactic::{sorry_tokens, tactic_breaks};
use lean_bridge::protocol::{
    CommandRequest, CommandResponse, Message, Pos, ReplError, Request, Severity, Sorry,
    TacticRequest, TacticResponse,
};

/// What every simulated proof depends on (as most Mathlib proofs do).
const DEFAULT_AXIOMS: [&str; 3] = ["propext", "Classical.choice", "Quot.sound"];
const SORRY_AXIOM: &str = "sorryAx";
const SORRY_WARNING: &str = "declaration uses 'sorry'";
/// Lean's default `maxHeartbeats`, the budget of every tactic-mode request (repl issue #69).
const DEFAULT_HEARTBEATS: u64 = 200_000;
/// Where the simulated `lake env` finds modules; quoted in import errors as Lean does.
const SEARCH_PATH: &str = "/sim/.lake/build/lib/lean\n/sim/toolchain/lib/lean";

/// What the simulated REPL does with a request.
pub enum Answer {
    Reply(Value),
    /// The tactic never finishes.
    Hang,
}

#[derive(Default)]
pub struct Options {
    /// Leave `proofStatus` out, as REPLs before v4.19 do.
    pub no_proof_status: bool,
    /// This tactic hangs wherever it is run.
    pub hang_on: Option<String>,
    /// Namespaces whose library holds a constant of every world theorem's name (as Mathlib
    /// has `Nat.foo` for many a `foo`): with the namespace open, `#print axioms foo` reports
    /// that constant too, first.
    pub shadow_namespaces: Vec<String>,
    /// Refuse a parenthesised tactic sequence, as a Lean that parses it differently would.
    pub no_tactic_blocks: bool,
    /// What `#eval Lean.versionString` answers.
    pub lean_version: String,
}

pub struct SimLean {
    world: World,
    options: Options,
    envs: Vec<Env>,
    states: Vec<ProofState>,
}

#[derive(Clone, Default)]
struct Env {
    /// Declared theorem -> the axioms it depends on.
    decls: HashMap<String, Vec<String>>,
    /// Namespaces opened by `open A B` lines, in order.
    opened: Vec<String>,
    /// `set_option maxHeartbeats N` of the header (0: no limit).
    max_heartbeats: Option<u64>,
}

#[derive(Default)]
struct ProofState {
    theorem: usize,
    goals: Vec<String>,
    forgotten: bool,
    /// A goal on the way here was admitted with `sorry`: closing the rest is "Incomplete:
    /// contains sorry" (repl PR #90's `test/have_by_sorry` case of a branch after a hole).
    sorried: bool,
    /// Grown from a sorry's own proof state inside a proof (not the theorem's `:= by sorry`):
    /// closing it is "Incomplete: contains metavariable(s)". The repl answers that when the
    /// root goal's proof term still has expression metavariables (`REPL/Main.lean`
    /// `getProofStatus`: `if pf.hasExprMVar`), which a hole's state may leave; the simulator
    /// takes the pessimistic case always, so the search must not rely on `Completed` there.
    from_hole: bool,
}

/// One tactic on one state of the world.
enum Step {
    Goals {
        goals: Vec<String>,
        /// Goals admitted with `sorry` on the way.
        admitted: Vec<String>,
        axioms: Vec<String>,
    },
    Error(String),
    Throw(String),
    Incomplete(String),
    /// Closed, but tactic mode reports this status.
    Misreported(String),
    /// No goals left in tactic mode (with `status`); Lean's `error` as a command.
    Unsound {
        status: String,
        error: String,
    },
    Hang,
}

impl SimLean {
    pub fn new(world: World, options: Options) -> Self {
        Self {
            world,
            options,
            envs: Vec::new(),
            states: Vec::new(),
        }
    }

    /// Every proof state so far becomes unknown (numbering goes on).
    pub fn forget_proof_states(&mut self) {
        for state in &mut self.states {
            state.forgotten = true;
        }
    }

    pub fn handle(&mut self, request: Request) -> Answer {
        match request {
            Request::Command(command) => self.command(command),
            Request::Tactic(tactic) => self.tactic(tactic),
        }
    }

    fn command(&mut self, request: CommandRequest) -> Answer {
        let base = match request.env {
            None => Env::default(),
            Some(id) => match self.envs.get(id as usize) {
                Some(env) => env.clone(),
                None => return error_reply("Unknown environment."),
            },
        };
        let text = request.cmd.trim();
        if let Some(name) = text.strip_prefix("#print axioms") {
            return self.print_axioms(base, name.trim());
        }
        if text == "#eval Lean.versionString" {
            return self.version(base);
        }
        match self.find_theorem(text) {
            Some((index, body)) => self.theorem(base, index, text, body),
            None => self.header(base, text),
        }
    }

    /// Imports and options: `import X` fails for modules the world does not have, with the
    /// message Lean gives for a module missing from the search path.
    fn header(&mut self, base: Env, text: &str) -> Answer {
        let mut messages = Vec::new();
        let mut base = base;
        for (line, source) in text.lines().enumerate() {
            if let Some(n) = source.trim().strip_prefix("set_option maxHeartbeats ") {
                base.max_heartbeats = n.split_whitespace().next().and_then(|n| n.parse().ok());
                continue;
            }
            if let Some(names) = source.trim().strip_prefix("open ") {
                let names = names.split_whitespace().take_while(|n| *n != "in");
                base.opened.extend(names.map(String::from));
                continue;
            }
            let Some(modules) = source.trim().strip_prefix("import ") else {
                continue;
            };
            for module in modules.split_whitespace() {
                let root = module.split('.').next().unwrap_or(module);
                if self.world.modules.iter().any(|m| m == module || m == root) {
                    continue;
                }
                messages.push(message(
                    Severity::Error,
                    line as u32 + 1,
                    format!(
                        "unknown module prefix '{root}'\n\nNo directory '{root}' or file '{root}.olean' in the search path entries:\n{SEARCH_PATH}"
                    ),
                ));
            }
        }
        let env = self.push_env(base);
        reply(&CommandResponse {
            env,
            messages,
            sorries: Vec::new(),
        })
    }

    /// The world theorem whose statement this command declares, and the proof after `:= by`.
    fn find_theorem<'a>(&self, text: &'a str) -> Option<(usize, &'a str)> {
        self.world
            .theorems
            .iter()
            .enumerate()
            .find_map(|(index, t)| {
                let head = statement_head(&t.formal_statement);
                let start = text.find(head)?;
                let rest = text[start + head.len()..].trim_start();
                let rest = rest.strip_prefix(":=")?.trim_start();
                // A term-mode `:= sorry` starts a proof state as `:= by sorry` does.
                let body = rest
                    .strip_prefix("by")
                    .or((rest.trim_end() == "sorry").then_some(rest))?;
                Some((index, body))
            })
    }

    fn theorem(&mut self, mut base: Env, index: usize, text: &str, body: &str) -> Answer {
        let theorem = &self.world.theorems[index];
        let name = declaration_name(&theorem.formal_statement)
            .unwrap_or(&theorem.name)
            .to_owned();
        let mut messages = Vec::new();
        let mut sorries = Vec::new();
        let axioms;
        // Lean reports the sorry warning and a failed termination check on the name.
        let span = declaration_name_span(text).unwrap_or(0..0);
        let name_at = (position(text, span.start), position(text, span.end));
        if body.trim() == "sorry" {
            let root = theorem.root.clone();
            let goal = root.join("\n\n");
            let proof_state = self.push_state(index, root);
            // Positions as Lean gives them: the `sorry` itself, and the warning on the name.
            let at = text.rfind("sorry").unwrap_or(0);
            sorries.push(Sorry {
                proof_state: Some(proof_state),
                pos: Some(position(text, at)),
                end_pos: Some(position(text, at + "sorry".len())),
                goal,
            });
            messages.push(Message {
                severity: Severity::Warning,
                pos: name_at.0,
                end_pos: Some(name_at.1),
                data: SORRY_WARNING.into(),
            });
            axioms = vec![SORRY_AXIOM.to_owned()];
        } else {
            let limit = base.max_heartbeats.unwrap_or(DEFAULT_HEARTBEATS);
            let body_at = body.as_ptr() as usize - text.as_ptr() as usize;
            match self.replay_proof(index, &name, (text, body_at), name_at, limit) {
                Err(()) => return Answer::Hang,
                Ok(replayed) => {
                    messages = replayed.messages;
                    axioms = replayed.axioms;
                    // Each admitted goal is a proof state, at its `sorry` in the command
                    // (repl `test/have_by_sorry`: `"pos": {"line": 2, "column": 23}`).
                    let mut sorry_at = sorry_tokens(&text[body_at..]).into_iter();
                    for goal in replayed.admitted {
                        let at = body_at + sorry_at.next().unwrap_or(0);
                        let proof_state = self.push(ProofState {
                            theorem: index,
                            goals: vec![goal.clone()],
                            from_hole: true,
                            ..ProofState::default()
                        });
                        sorries.push(Sorry {
                            proof_state: Some(proof_state),
                            pos: Some(position(text, at)),
                            end_pos: Some(position(text, at + "sorry".len())),
                            goal,
                        });
                    }
                }
            }
        }
        base.decls.insert(name, axioms);
        let env = self.push_env(base);
        reply(&CommandResponse {
            env,
            messages,
            sorries,
        })
    }

    /// Runs a whole tactic script through the world: `command` is the command's text and
    /// where its proof (after `:= by`) starts, `name_at` where the declaration's name stands.
    /// `Err` when a tactic hangs.
    fn replay_proof(
        &self,
        index: usize,
        name: &str,
        command: (&str, usize),
        name_at: (Pos, Pos),
        heartbeats: u64,
    ) -> Result<Replayed, ()> {
        let (text, body_at) = command;
        let body = &text[body_at..];
        let theorem = &self.world.theorems[index];
        let mut goals = theorem.root.clone();
        let mut axioms: Vec<String> = DEFAULT_AXIOMS.map(String::from).to_vec();
        let mut messages = Vec::new();
        let mut admitted_goals = Vec::new();
        let mut sorry = false;
        for (line, tactic) in split_script(body) {
            let fail = |data: String| message(Severity::Error, line + 1, data);
            match self.step(theorem, &goals, &tactic, heartbeats) {
                Step::Goals {
                    goals: next,
                    admitted,
                    axioms: extra,
                } => {
                    sorry |= !admitted.is_empty();
                    admitted_goals.extend(admitted);
                    goals = next;
                    axioms.extend(
                        extra
                            .into_iter()
                            .filter(|a| !axioms.contains(a))
                            .collect::<Vec<_>>(),
                    );
                }
                Step::Error(data) | Step::Throw(data) => {
                    messages.push(fail(data));
                    break;
                }
                Step::Misreported(_) => goals.clear(),
                Step::Incomplete(status) if status.contains("sorry") => {
                    sorry = true;
                    goals.clear();
                }
                Step::Incomplete(_) => {
                    messages.push(fail(format!(
                        "(kernel) declaration has metavariables '{name}'"
                    )));
                    break;
                }
                Step::Unsound { error, .. } => {
                    messages.push(Message {
                        severity: Severity::Error,
                        pos: name_at.0,
                        end_pos: Some(name_at.1),
                        data: error,
                    });
                    break;
                }
                Step::Hang => return Err(()),
            }
        }
        if messages.is_empty() && !goals.is_empty() {
            // Lean puts it on the proof's `by`, spanning the whole block
            // (repl `test/have_by_sorry.expected.out`).
            let by_at = text[..body_at].rfind("by").unwrap_or(0);
            messages.push(Message {
                severity: Severity::Error,
                pos: position(text, by_at),
                end_pos: Some(position(text, text.trim_end().len())),
                data: format!("unsolved goals\n{}", goals.join("\n\n")),
            });
        }
        let failed = messages.iter().any(|m| m.severity == Severity::Error);
        // A declaration with errors is not reported as using `sorry` (test/have_by_sorry).
        if sorry && !failed {
            messages.push(message(Severity::Warning, 1, SORRY_WARNING.into()));
        }
        if sorry || failed {
            axioms.push(SORRY_AXIOM.into());
        }
        Ok(Replayed {
            messages,
            axioms,
            admitted: admitted_goals,
        })
    }

    /// One message per constant the name resolves to, those of opened namespaces first, as
    /// Lean's `#print axioms` does (`cs.forM printAxiomsOf`).
    fn print_axioms(&mut self, base: Env, name: &str) -> Answer {
        let report = |constant: &str, axioms: &[String]| {
            let data = if axioms.is_empty() {
                format!("'{constant}' does not depend on any axioms")
            } else {
                format!("'{constant}' depends on axioms: [{}]", axioms.join(", "))
            };
            message(Severity::Info, 1, data)
        };
        let mut messages: Vec<Message> = base
            .opened
            .iter()
            .filter(|ns| self.options.shadow_namespaces.contains(ns))
            .map(|ns| report(&format!("{ns}.{name}"), &[]))
            .collect();
        if let Some(axioms) = base.decls.get(name) {
            messages.push(report(name, axioms));
        }
        if messages.is_empty() {
            messages.push(message(
                Severity::Error,
                1,
                format!("unknown constant '{name}'"),
            ));
        }
        let env = self.push_env(base);
        reply(&CommandResponse {
            env,
            messages,
            sorries: Vec::new(),
        })
    }

    /// `#eval` shows a `String` as a literal, in an info message at the `#eval` token
    /// (leanprover/lean4 src/Lean/Elab/BuiltinEvalCommand.lean, `elabEvalCoreUnsafe`).
    fn version(&mut self, base: Env) -> Answer {
        let data = format!("{:?}", self.options.lean_version);
        let env = self.push_env(base);
        let mut info = message(Severity::Info, 1, data);
        info.end_pos = Some(Pos { line: 1, column: 5 });
        reply(&CommandResponse {
            env,
            messages: vec![info],
            sorries: Vec::new(),
        })
    }

    fn tactic(&mut self, request: TacticRequest) -> Answer {
        let Some(state) = self
            .states
            .get(request.proof_state() as usize)
            .filter(|s| !s.forgotten)
        else {
            return error_reply("Unknown proof state.");
        };
        let theorem_index = state.theorem;
        let (sorried, from_hole) = (state.sorried, state.from_hole);
        let theorem = &self.world.theorems[theorem_index];
        let tactics = match self.parse_tactic(request.tactic()) {
            Ok(tactics) => tactics,
            Err(data) => return error_reply(&format!("Lean error:\n{data}")),
        };
        let mut goals = state.goals.clone();
        let mut admitted = Vec::new();
        let mut messages = Vec::new();
        let mut stopped = None;
        for tactic in &tactics {
            match self.step(theorem, &goals, tactic, DEFAULT_HEARTBEATS) {
                Step::Hang => return Answer::Hang,
                Step::Throw(data) => return error_reply(&format!("Lean error:\n{data}")),
                Step::Goals {
                    goals: next,
                    admitted: more,
                    ..
                } => {
                    goals = next;
                    admitted.extend(more);
                }
                // As the REPL does: the error is logged, the goal closed by error recovery.
                Step::Error(data) => {
                    messages.push(message(Severity::Error, 0, data));
                    stopped = Some("Incomplete: contains sorry".to_owned());
                    break;
                }
                Step::Incomplete(status)
                | Step::Misreported(status)
                | Step::Unsound { status, .. } => {
                    stopped = Some(status);
                    break;
                }
            }
        }
        if stopped.is_some() {
            goals.clear();
        }
        let sorried = sorried || !admitted.is_empty();
        let status = stopped.unwrap_or_else(|| {
            match (goals.is_empty(), sorried, from_hole) {
                (false, _, _) => "Incomplete: open goals remain",
                (true, true, _) => "Incomplete: contains sorry",
                (true, false, true) => "Incomplete: contains metavariable(s)",
                (true, false, false) => "Completed",
            }
            .to_owned()
        });
        // Each admitted goal becomes a proof state of its own, numbered before the result
        // (repl `test/sorry_hypotheses.expected.out`: sorry 1, result 2).
        let sorries = admitted
            .into_iter()
            .map(|goal| Sorry {
                proof_state: Some(self.push(ProofState {
                    theorem: theorem_index,
                    goals: vec![goal.clone()],
                    from_hole: true,
                    ..ProofState::default()
                })),
                pos: None,
                end_pos: None,
                goal,
            })
            .collect();
        let proof_state = self.push(ProofState {
            theorem: theorem_index,
            goals: goals.clone(),
            sorried,
            from_hole,
            ..ProofState::default()
        });
        reply(&TacticResponse {
            proof_state,
            goals,
            messages,
            sorries,
            proof_status: (!self.options.no_proof_status).then_some(status),
        })
    }

    /// The tactics a request's text holds. Lean parses it as ONE `tactic` (repl
    /// `REPL/Snapshots.lean`, `runString`), and text left after that tactic and the blanks
    /// after it is "expected end of input" there (Lean's `runParserCategory`), found where
    /// the bridge finds it ([`tactic_breaks`]: a `calc` step at the line's start is no break):
    /// `<input>:1:6` for `ext1 x; ext1 n`, as repl issue #43 shows. A parenthesised sequence
    /// `(t1\n t2\n)` is one `paren` tactic whose tactics sit at column 1; a `t1; t2` line in it
    /// is one step of the world, as a world writes it.
    fn parse_tactic(&self, text: &str) -> Result<Vec<String>, String> {
        if let Some(&at) = tactic_breaks(text).first() {
            let Pos { line, column } = position(text, at);
            return Err(format!("<input>:{line}:{column}: expected end of input"));
        }
        let text = text.trim();
        if let Some(inner) = text.strip_prefix('(').and_then(|t| t.strip_suffix(')')) {
            if self.options.no_tactic_blocks {
                return Err("<input>:1:0: unknown tactic".into());
            }
            let mut lines = inner.trim_end().lines();
            let first = lines.next().unwrap_or_default().to_owned();
            let mut body = vec![first];
            for line in lines {
                match line.strip_prefix(' ') {
                    Some(line) => body.push(line.to_owned()),
                    None if line.trim().is_empty() => body.push(String::new()),
                    None => return Err(format!("<input>:{}:0: unexpected token", body.len() + 1)),
                }
            }
            return Ok(split_script(&body.join("\n"))
                .into_iter()
                .map(|(_, t)| t)
                .collect());
        }
        Ok(vec![text.to_owned()])
    }

    /// One tactic with a budget of `heartbeats` (0: no limit).
    fn step(
        &self,
        theorem: &WorldTheorem,
        goals: &[String],
        tactic: &str,
        heartbeats: u64,
    ) -> Step {
        let tactic = tactic.trim();
        if self.options.hang_on.as_deref() == Some(tactic) {
            return Step::Hang;
        }
        if goals.is_empty() {
            return Step::Error("no goals to be solved".into());
        }
        // `sorry`/`admit` close the main goal; `stop` is `repeat sorry`: every goal.
        let admit = match tactic {
            "sorry" | "admit" => 1,
            "stop" => goals.len(),
            _ => 0,
        };
        if admit > 0 {
            return Step::Goals {
                goals: goals[admit..].to_vec(),
                admitted: goals[..admit].to_vec(),
                axioms: vec![SORRY_AXIOM.to_owned()],
            };
        }
        let known = theorem
            .state(goals)
            .and_then(|s| s.tactics.iter().find(|t| t.tactic == tactic));
        let Some(known) = known else {
            if let Some(have) = have_step(goals, tactic) {
                return self.have(theorem, have, heartbeats);
            }
            return Step::Error(format!(
                "tactic '{tactic}' failed (the simulated world has no such step here)\n{}",
                goals.join("\n\n")
            ));
        };
        match &known.effect {
            Effect::HaveFails(data) => Step::Error(data.clone()),
            Effect::Goals(goals) => Step::Goals {
                goals: goals.clone(),
                admitted: Vec::new(),
                axioms: known.axioms.clone(),
            },
            Effect::Admits { goals, sorries } => Step::Goals {
                goals: goals.clone(),
                admitted: sorries.clone(),
                axioms: known.axioms.clone(),
            },
            Effect::Error(data) => Step::Error(data.clone()),
            Effect::Throw(data) => Step::Throw(data.clone()),
            Effect::Incomplete(status) => Step::Incomplete(status.clone()),
            Effect::Misreported(status) => Step::Misreported(status.clone()),
            Effect::Unsound { status, error } => Step::Unsound {
                status: status.clone(),
                error: error.clone(),
            },
            // Thrown, as repl issue #69 shows it in tactic mode (a command logs it instead).
            Effect::Heavy { heartbeats: needed, .. } if heartbeats > 0 && *needed > heartbeats => {
                Step::Throw(format!("(deterministic) timeout at `elaborator`, maximum number of heartbeats ({heartbeats}) has been reached\nUse `set_option maxHeartbeats <num>` to set the limit.(invalid MessageData.lazy, missing context)"))
            }
            Effect::Heavy { goals, .. } => Step::Goals {
                goals: goals.clone(),
                admitted: Vec::new(),
                axioms: known.axioms.clone(),
            },
            Effect::Hang => Step::Hang,
        }
    }

    /// A `have` the world does not script: its proof runs on the have's own goal (`sorry`
    /// admits it), and if it closes that goal the hypothesis is added.
    fn have(&self, theorem: &WorldTheorem, have: HaveStep, heartbeats: u64) -> Step {
        let script = match have.body.strip_prefix("by") {
            Some(script) => script,
            None if have.body == "sorry" => "sorry",
            None => {
                return Step::Error(format!(
                    "the simulated world cannot elaborate the term `{}`",
                    have.body
                ))
            }
        };
        let mut goals = vec![have.goal];
        let (mut admitted, mut axioms) = (Vec::new(), Vec::new());
        for (_, tactic) in split_script(script) {
            match self.step(theorem, &goals, &tactic, heartbeats) {
                Step::Goals {
                    goals: next,
                    admitted: more,
                    axioms: extra,
                } => {
                    goals = next;
                    admitted.extend(more);
                    axioms.extend(extra);
                }
                Step::Misreported(_) => goals.clear(),
                Step::Hang => return Step::Hang,
                Step::Error(data) | Step::Throw(data) => return Step::Error(data),
                Step::Incomplete(status) | Step::Unsound { status, .. } => {
                    return Step::Error(status)
                }
            }
        }
        if !goals.is_empty() {
            return Step::Error(format!("unsolved goals\n{}", goals.join("\n\n")));
        }
        Step::Goals {
            goals: have.goals,
            admitted,
            axioms,
        }
    }

    fn push_env(&mut self, env: Env) -> u32 {
        self.envs.push(env);
        self.envs.len() as u32 - 1
    }

    fn push_state(&mut self, theorem: usize, goals: Vec<String>) -> u32 {
        self.push(ProofState {
            theorem,
            goals,
            ..ProofState::default()
        })
    }

    fn push(&mut self, state: ProofState) -> u32 {
        self.states.push(state);
        self.states.len() as u32 - 1
    }
}

/// What a whole proof did in the world: Lean's messages, the axioms the declaration depends
/// on, and the goals admitted with `sorry` on the way, in order.
struct Replayed {
    messages: Vec<Message>,
    axioms: Vec<String>,
    admitted: Vec<String>,
}

/// Whether a line at a tactic's own column continues it as a step of its `calc`: Lean's
/// `calcSteps` parses `withPosition((ppLine linebreak calcStep)*)` with `colGe` steps
/// (leanprover/lean4 `src/Init/NotationExtra.lean`), so steps may stand at the column of
/// `calc` itself, and no tactic starts with `_`.
fn is_calc_step(line: &str) -> bool {
    line.trim_start().starts_with('_')
}

/// Splits an indented tactic block into tactics with their (0-based) line within `body`:
/// a line at the block's own indentation starts a tactic, unless it is a `calc` step
/// ([`is_calc_step`]); deeper lines continue it.
fn split_script(body: &str) -> Vec<(u32, String)> {
    // Lean's indentation is ASCII spaces and tabs; counting them in bytes never splits a char.
    let indent = |l: &str| l.len() - l.trim_start_matches([' ', '\t']).len();
    let margin = body
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(indent)
        .min()
        .unwrap_or(0);
    let mut tactics: Vec<(u32, String)> = Vec::new();
    for (line, text) in body.lines().enumerate() {
        if text.trim().is_empty() {
            continue;
        }
        let text = &text[margin..];
        match tactics.last_mut() {
            Some((_, tactic)) if indent(text) > 0 || is_calc_step(text) => {
                tactic.push('\n');
                tactic.push_str(text);
            }
            _ => tactics.push((line as u32, text.trim_end().to_owned())),
        }
    }
    tactics
}

/// Lean's position of byte `at` of `text`: 1-based line, column in characters.
fn position(text: &str, at: usize) -> Pos {
    let before = &text[..at];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    Pos {
        line: before.matches('\n').count() as u32 + 1,
        column: before[line_start..].chars().count() as u32,
    }
}

fn message(severity: Severity, line: u32, data: String) -> Message {
    Message {
        severity,
        pos: Pos { line, column: 0 },
        end_pos: Some(Pos { line, column: 0 }),
        data,
    }
}

fn reply(response: &impl serde::Serialize) -> Answer {
    Answer::Reply(serde_json::to_value(response).expect("responses serialise"))
}

fn error_reply(message: &str) -> Answer {
    reply(&ReplError {
        message: message.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_split_into_tactics_with_continuations() {
        let body = "\n  intro x\n  have h : p := by\n    simp\n  exact h";
        assert_eq!(
            split_script(body),
            vec![
                (1, "intro x".to_owned()),
                (2, "have h : p := by\n  simp".to_owned()),
                (4, "exact h".to_owned()),
            ]
        );
        let body = "  calc a = b := h\n  _ = c := by simp\n  exact h";
        assert_eq!(
            split_script(body),
            vec![
                (0, "calc a = b := h\n_ = c := by simp".to_owned()),
                (2, "exact h".to_owned()),
            ]
        );
    }

    #[test]
    fn one_tactic_may_hold_calc_steps_at_its_column_but_not_a_second_tactic() {
        let world = World {
            modules: Vec::new(),
            theorems: Vec::new(),
        };
        let lean = SimLean::new(world, Options::default());
        let calc = "calc a = b := h\n_ = c := h";
        assert_eq!(lean.parse_tactic(calc), Ok(vec![calc.to_owned()]));
        assert_eq!(
            lean.parse_tactic("simp\nrfl"),
            Err("<input>:2:0: expected end of input".to_owned())
        );
    }
}

//! In-process doubles of the engine's three backends, all driven by one
//! `sim::world::World` script and (optionally) a manual clock they advance by a
//! fixed cost per call, so budgets and time accounting are deterministic.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use formats::join_goals;
use search::config::SearchConfig;
use search::engine::{search_theorem, ManualClock, SearchOutcome, SearchParams};
use search::env::{
    EnvError, Hole, ProofCheck, ProofEnv, ProofSession, StateId, TacticOutcome, Theorem,
};
use search::policy::{Completion, Policy, PolicyError, TokenLogprob};
use search::templates::PromptTemplate;
use search::value::{ValueError, ValueScorer};
use sim::world::{have_step, Effect, World, WorldState, WorldTactic, WorldTheorem};

pub fn goals(g: &[&str]) -> Vec<String> {
    g.iter().map(|s| s.to_string()).collect()
}

pub fn tactic(tactic: &str, logprob: f64, effect: Effect) -> WorldTactic {
    WorldTactic::new(tactic, logprob, effect)
}

/// The effect of a tactic that leaves these goals (`[]`: the proof is complete).
pub fn to(g: &[&str]) -> Effect {
    Effect::Goals(goals(g))
}

pub fn state(g: &[&str], tactics: Vec<WorldTactic>) -> WorldState {
    WorldState {
        goals: goals(g),
        tactics,
    }
}

pub fn world(name: &str, root: &[&str], states: Vec<WorldState>) -> World {
    World {
        modules: vec!["Mathlib".into()],
        theorems: vec![WorldTheorem {
            name: name.into(),
            formal_statement: format!("theorem {name} : True := by"),
            root: goals(root),
            states,
            sketches: Vec::new(),
        }],
    }
}

/// One theorem whose most likely first tactic leads to a dead end: the proof is `good`,
/// `done`, found after `dead` is expanded and its only tactic (`stuck`) fails.
pub fn backtracking_world() -> World {
    world(
        "bt",
        &["⊢ P"],
        vec![
            state(
                &["⊢ P"],
                vec![
                    tactic("dead", -0.1, to(&["⊢ Q"])),
                    tactic("good", -1.0, to(&["⊢ R"])),
                ],
            ),
            state(
                &["⊢ Q"],
                vec![tactic("stuck", -0.1, Effect::Error("no".into()))],
            ),
            state(&["⊢ R"], vec![tactic("done", -0.1, to(&[]))]),
        ],
    )
}

/// The world's first theorem.
pub fn theorem(world: &World) -> Theorem {
    theorems(world).swap_remove(0)
}

/// Every theorem of the world, in order, as the sweep reads them.
pub fn theorems(world: &World) -> Vec<Theorem> {
    world.theorems.iter().map(WorldTheorem::input).collect()
}

/// Per-call costs charged to the clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct Costs {
    pub start: Duration,
    pub generate: Duration,
    pub tactic: Duration,
    pub score: Duration,
}

/// Everything the doubles share: the script, the clock and what they saw.
pub struct Sim {
    pub world: World,
    pub clock: Arc<ManualClock>,
    pub costs: Costs,
    /// Every tactic that reached the environment.
    pub applied: Mutex<Vec<String>>,
    /// Prompts per generate call.
    pub gen_calls: Mutex<Vec<usize>>,
    /// Every state sent to the scorer.
    pub scored: Mutex<Vec<String>>,
    /// The whole-proof check rejects every proof.
    pub reject_checks: bool,
    /// The policy writes the rest of the proof after each sample's first tactic
    /// ([`World::rest_of_proof`]), one line and one token per tactic.
    pub continuations: bool,
    /// Whole-proof checks run.
    pub checks: Mutex<Vec<Vec<String>>>,
}

impl Sim {
    pub fn new(world: World) -> Arc<Self> {
        Self::with(world, Costs::default(), false)
    }

    pub fn with(world: World, costs: Costs, reject_checks: bool) -> Arc<Self> {
        Arc::new(Self {
            world,
            clock: Arc::new(ManualClock::default()),
            costs,
            applied: Mutex::new(Vec::new()),
            gen_calls: Mutex::new(Vec::new()),
            scored: Mutex::new(Vec::new()),
            reject_checks,
            continuations: false,
            checks: Mutex::new(Vec::new()),
        })
    }

    /// A simulation whose model writes whole continuations.
    pub fn writing_proofs(world: World) -> Arc<Self> {
        let mut sim = Self::with(world, Costs::default(), false);
        Arc::get_mut(&mut sim).expect("fresh").continuations = true;
        sim
    }

    fn state(&self, goals: &[String]) -> Option<&WorldState> {
        self.world.theorems.iter().find_map(|t| t.state(goals))
    }

    pub fn applied(&self) -> Vec<String> {
        self.applied.lock().unwrap().clone()
    }
}

/// The policy: a prompt is the state text (template `{state}`); the j-th of `n` samples is
/// the state's j-th most likely tactic (cycling), with one token carrying its log-prob.
pub struct SimPolicy(pub Arc<Sim>);

#[async_trait]
impl Policy for SimPolicy {
    async fn generate(
        &self,
        prompts: &[String],
        n: usize,
    ) -> Result<Vec<Vec<Completion>>, PolicyError> {
        let sim = &self.0;
        sim.gen_calls.lock().unwrap().push(prompts.len());
        sim.clock.advance(sim.costs.generate);
        let index = sim.world.state_index();
        Ok(prompts
            .iter()
            .map(|p| {
                let state = index.get(p.as_str());
                let mut tactics: Vec<&WorldTactic> = state
                    .map(|s| s.tactics.iter().collect())
                    .unwrap_or_default();
                tactics.sort_by(|a, b| b.logprob.total_cmp(&a.logprob));
                (0..n)
                    .map(|j| match tactics.get(j % tactics.len().max(1)) {
                        Some(t) => {
                            let first = t.completion.clone().unwrap_or_else(|| t.tactic.clone());
                            let mut lines = vec![(first, t.logprob)];
                            if sim.continuations {
                                lines.extend(
                                    sim.world
                                        .rest_of_proof(&state.expect("a known state").goals, t)
                                        .into_iter()
                                        .map(|r| (r.tactic.clone(), r.logprob)),
                                );
                            }
                            let tokens: Vec<TokenLogprob> = lines
                                .iter()
                                .enumerate()
                                .map(|(i, (text, logprob))| TokenLogprob {
                                    logprob: *logprob,
                                    token_id: None,
                                    text: Some(if i == 0 {
                                        text.clone()
                                    } else {
                                        format!("\n{text}")
                                    }),
                                })
                                .collect();
                            Completion {
                                text: tokens.iter().filter_map(|t| t.text.clone()).collect(),
                                completion_tokens: tokens.len() as u32,
                                prompt_tokens: 10,
                                tokens,
                                finish_reason: "stop".into(),
                            }
                        }
                        None => Completion {
                            text: "junk".into(),
                            tokens: vec![],
                            finish_reason: "stop".into(),
                            completion_tokens: 1,
                            prompt_tokens: 10,
                        },
                    })
                    .collect()
            })
            .collect())
    }
}

/// The scorer: energy = number of characters of the state (shorter is "more provable").
pub struct SimScorer(pub Arc<Sim>);

#[async_trait]
impl ValueScorer for SimScorer {
    async fn score(&self, states: &[String]) -> Result<Vec<Option<f64>>, ValueError> {
        self.0.clock.advance(self.0.costs.score);
        self.0.scored.lock().unwrap().extend(states.iter().cloned());
        Ok(states.iter().map(|s| Some(s.len() as f64)).collect())
    }
}

pub struct SimEnv(pub Arc<Sim>);

#[async_trait]
impl ProofEnv for SimEnv {
    async fn start(&self, theorem: &Theorem) -> Result<Box<dyn ProofSession>, EnvError> {
        self.0.clock.advance(self.0.costs.start);
        // A theorem the script lacks is a lost environment (the infrastructure's fault); one
        // whose statement mentions `rejected` is Lean rejecting the statement.
        let t =
            self.0.world.theorem(&theorem.name).ok_or_else(|| {
                EnvError::Infrastructure(format!("unknown theorem {}", theorem.name))
            })?;
        if t.formal_statement.contains("rejected") {
            return Err(EnvError::Statement(
                "unknown identifier 'rejected'".to_owned(),
            ));
        }
        Ok(Box::new(SimSession {
            sim: self.0.clone(),
            states: vec![t.root.clone()],
        }))
    }
}

pub struct SimSession {
    sim: Arc<Sim>,
    /// Goals by StateId.
    states: Vec<Vec<String>>,
}

impl SimSession {
    /// The world's effect of `tactic` at `goals`; a `have` the world does not script runs
    /// its proof on its own goal (`sorry` admits it), as the simulated REPL does.
    fn step(&self, goals: &[String], tactic: &str) -> Effect {
        let known = self
            .sim
            .state(goals)
            .and_then(|s| s.tactics.iter().find(|t| t.tactic == tactic));
        match (known, have_step(goals, tactic)) {
            (Some(t), _) => match &t.effect {
                Effect::HaveFails(message) => Effect::Error(message.clone()),
                effect => effect.clone(),
            },
            (None, Some(have)) => {
                let script = have.body.trim_start_matches("by").trim();
                if script == "sorry" {
                    return Effect::Admits {
                        goals: have.goals,
                        sorries: vec![have.goal],
                    };
                }
                let mut inner = vec![have.goal];
                for line in script.lines() {
                    match self.step(&inner, line.trim()) {
                        Effect::Goals(next) => inner = next,
                        Effect::Misreported(_) => inner.clear(),
                        other => return other,
                    }
                }
                if inner.is_empty() {
                    Effect::Goals(have.goals)
                } else {
                    Effect::Error(format!("unsolved goals {inner:?}"))
                }
            }
            (None, None) => Effect::Error(format!("unknown tactic {tactic}")),
        }
    }

    fn push(&mut self, goals: Vec<String>) -> StateId {
        self.states.push(goals);
        StateId(self.states.len() as u32 - 1)
    }
}

#[async_trait]
impl ProofSession for SimSession {
    fn root(&self) -> (StateId, &[String]) {
        (StateId(0), &self.states[0])
    }

    async fn apply(&mut self, state: StateId, tactic: &str) -> Result<TacticOutcome, EnvError> {
        self.sim.clock.advance(self.sim.costs.tactic);
        self.sim.applied.lock().unwrap().push(tactic.to_owned());
        let goals = self.states[state.0 as usize].clone();
        Ok(match self.step(&goals, tactic) {
            Effect::Goals(g) | Effect::Heavy { goals: g, .. } => {
                let id = StateId(self.states.len() as u32);
                self.states.push(g.clone());
                if g.is_empty() {
                    TacticOutcome::Complete {
                        state: id,
                        status_confirmed: true,
                    }
                } else {
                    TacticOutcome::Progress {
                        state: id,
                        goals: g,
                    }
                }
            }
            Effect::Admits { sorries, .. } => TacticOutcome::Sorry { goals: sorries },
            Effect::Error(m) | Effect::Throw(m) | Effect::HaveFails(m) => {
                TacticOutcome::Error { message: m }
            }
            Effect::Incomplete(status)
            | Effect::Misreported(status)
            | Effect::Unsound { status, .. } => {
                let id = StateId(self.states.len() as u32);
                self.states.push(Vec::new());
                TacticOutcome::Incomplete { state: id, status }
            }
            Effect::Hang => TacticOutcome::Timeout,
        })
    }

    async fn apply_with_holes(
        &mut self,
        state: StateId,
        tactic: &str,
    ) -> Result<TacticOutcome, EnvError> {
        let goals = self.states[state.0 as usize].clone();
        let Effect::Admits { goals, sorries } = self.step(&goals, tactic) else {
            return self.apply(state, tactic).await;
        };
        self.sim.clock.advance(self.sim.costs.tactic);
        self.sim.applied.lock().unwrap().push(tactic.to_owned());
        let holes = sorries
            .into_iter()
            .map(|goal| Hole {
                state: self.push(vec![goal.clone()]),
                goal,
            })
            .collect();
        Ok(TacticOutcome::Holes {
            state: self.push(goals.clone()),
            goals,
            holes,
        })
    }

    async fn check_proof(&mut self, tactics: &[String]) -> Result<ProofCheck, EnvError> {
        self.sim.clock.advance(self.sim.costs.tactic);
        self.sim.checks.lock().unwrap().push(tactics.to_vec());
        let mut goals = self.states[0].clone();
        let mut ok = true;
        for t in tactics {
            match self.step(&goals, t) {
                Effect::Goals(g) | Effect::Heavy { goals: g, .. } => goals = g,
                Effect::Misreported(_) => goals.clear(),
                _ => ok = false,
            }
        }
        let verified = ok && goals.is_empty() && !self.sim.reject_checks;
        Ok(ProofCheck {
            verified,
            proof: tactics.join("\n"),
            errors: if verified {
                vec![]
            } else {
                vec!["rejected by the check".into()]
            },
            axioms: vec!["propext".into()],
        })
    }
}

pub fn config() -> SearchConfig {
    SearchConfig {
        max_nodes: 50,
        max_depth: 10,
        num_candidates: 4,
        ..SearchConfig::default()
    }
}

/// A sweep's config over these doubles: [`config`]'s search, the bare `{state}` template and
/// `concurrency` theorems at a time.
pub fn sweep_config(concurrency: usize) -> search::Config {
    search::Config {
        search: config(),
        policy: search::config::PolicyConfig {
            template: "{state}".into(),
            ..Default::default()
        },
        sweep: search::config::SweepConfig {
            concurrency,
            ..Default::default()
        },
        ..search::Config::default()
    }
}

/// Runs one search of the world's theorem with the given config.
pub async fn run(sim: &Arc<Sim>, config: &SearchConfig, scored: bool) -> SearchOutcome {
    let template = PromptTemplate::from_config("{state}").unwrap();
    let params = SearchParams {
        config,
        template: &template,
        default_header: "import Mathlib",
        clock: sim.clock.as_ref(),
        width: None,
        planner: None,
    };
    let scorer = SimScorer(sim.clone());
    search_theorem(
        &theorem(&sim.world),
        &params,
        &SimPolicy(sim.clone()),
        scored.then_some(&scorer as &dyn ValueScorer),
        &SimEnv(sim.clone()),
    )
    .await
}

/// Goals text as the engine and the scorer see it.
pub fn key(g: &[&str]) -> String {
    join_goals(&goals(g))
}

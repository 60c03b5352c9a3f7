//! The engine's search logic against in-process doubles (see `engine_support`).

use crate::engine_support;

use std::time::Duration;

use engine_support::*;
use formats::results::SearchStatus;
use formats::NodeStatus;
use search::config::SearchConfig;
use sim::world::Effect;

#[tokio::test]
async fn backtracks_past_the_top_ranked_tactic() {
    // The most likely tactic leads to a dead end; the proof goes through the second one.
    let sim = Sim::new(backtracking_world());
    let out = run(&sim, &config(), false).await;
    assert_eq!(out.status, SearchStatus::Proved, "{:?}", out.error);
    assert_eq!(out.proof_tactics, vec!["good", "done"]);
    assert!(out.proof.as_ref().unwrap().verified);
    // The dead end was tried first and expanded before backtracking.
    let dead = out.tree.find_state(&goals(&["⊢ Q"])).unwrap();
    assert_eq!(out.tree.get(dead).status, NodeStatus::Expanded);
    assert_eq!(sim.applied(), vec!["dead", "good", "stuck", "done"]);
    assert_eq!(out.stats.nodes_expanded, 3);
    // The proof node itself is the deepest: two tactics deep.
    assert_eq!(out.stats.max_depth_reached, 2);

    let (rows, failed) = out.trajectory_rows("bt", 1);
    let labels: Vec<(Option<&str>, i32, Option<u32>)> = rows
        .iter()
        .map(|r| (r.tactic.as_deref(), r.label, r.remaining_depth))
        .collect();
    assert_eq!(
        labels,
        vec![
            (None, 1, Some(2)),
            (Some("dead"), 0, None),
            (Some("good"), 1, Some(1)),
            (Some("done"), 1, Some(0)),
        ]
    );
    assert_eq!(rows[3].status, NodeStatus::Proof);
    assert_eq!(failed.len(), 1);
    assert_eq!(
        (failed[0].tactic.as_str(), failed[0].outcome.as_str()),
        ("stuck", "error")
    );
}

#[tokio::test]
async fn transposition_is_recorded_not_requeued() {
    let w = world(
        "tr",
        &["⊢ P"],
        vec![
            state(
                &["⊢ P"],
                vec![
                    tactic("a", -0.1, to(&["⊢ Q"])),
                    tactic("b", -0.2, to(&["⊢ Q"])),
                ],
            ),
            state(
                &["⊢ Q"],
                vec![tactic("nope", -0.1, Effect::Error("no".into()))],
            ),
        ],
    );
    let sim = Sim::new(w);
    let out = run(&sim, &config(), false).await;
    assert_eq!(out.status, SearchStatus::Exhausted);
    assert_eq!(out.stats.transpositions, 1);
    assert_eq!(out.stats.candidates_passed_lean, 2);
    assert_eq!(out.tree.len(), 2, "the transposition is not a second node");
    assert_eq!(out.stats.nodes_expanded, 2, "⊢ Q expanded once");
    assert_eq!(sim.applied().iter().filter(|t| *t == "nope").count(), 1);
    assert!(out
        .failed
        .iter()
        .any(|f| &*f.tactic == "b" && f.outcome == "transposition"));
}

#[tokio::test]
async fn empty_goals_without_completed_status_are_never_a_proof() {
    let w = world(
        "trap",
        &["⊢ P"],
        vec![state(
            &["⊢ P"],
            vec![
                tactic(
                    "exact?",
                    -0.01,
                    Effect::Incomplete("Incomplete: contains metavariable(s)".into()),
                ),
                tactic("skip", -3.0, Effect::Error("no".into())),
            ],
        )],
    );
    let sim = Sim::new(w);
    let out = run(&sim, &config(), false).await;
    assert_eq!(out.status, SearchStatus::Exhausted);
    assert!(out.proof.is_none());
    assert_eq!(out.stats.incomplete, 1);
    assert_eq!(out.stats.candidates_passed_lean, 0);
    assert!(out
        .failed
        .iter()
        .any(|f| &*f.tactic == "exact?" && f.outcome == "incomplete"));
}

#[tokio::test]
async fn a_rejected_whole_proof_check_means_not_proved() {
    let w = world(
        "chk",
        &["⊢ P"],
        vec![state(&["⊢ P"], vec![tactic("decide", -0.1, to(&[]))])],
    );
    let sim = Sim::with(w, Costs::default(), true);
    let out = run(&sim, &config(), false).await;
    assert_eq!(out.status, SearchStatus::Exhausted);
    assert!(out.proof.is_none() && out.proof_tactics.is_empty());
    assert_eq!(out.stats.check_failures, 1);
    assert_eq!(out.tree.get(1).status, NodeStatus::Unverified);
    let (rows, failed) = out.trajectory_rows("chk", 1);
    assert!(rows.iter().all(|r| r.label == 0));
    assert_eq!(failed[0].outcome, "check_failed");
}

#[tokio::test]
async fn banned_tactics_never_reach_lean_but_lookalike_names_do() {
    let w = world(
        "ban",
        &["⊢ P"],
        vec![state(
            &["⊢ P"],
            vec![
                tactic("sorry", -0.01, to(&[])),
                tactic("admit", -0.02, to(&[])),
                tactic("exact sorry_free", -0.5, to(&[])),
            ],
        )],
    );
    let sim = Sim::new(w);
    let out = run(&sim, &config(), false).await;
    assert_eq!(out.status, SearchStatus::Proved);
    assert_eq!(sim.applied(), vec!["exact sorry_free"]);
    assert_eq!(
        out.stats.candidates_banned, 3,
        "4 samples cycle over 3 tactics: sorry twice"
    );
    assert_eq!(out.stats.candidates_generated, 4);
    assert_eq!(out.stats.candidates_unique, 1);
}

/// A chain `⊢ 0 -> ⊢ 1 -> ... -> ⊢ len` ending in a proof.
fn chain(len: usize) -> sim::world::World {
    let names: Vec<String> = (0..=len).map(|i| format!("⊢ {i}")).collect();
    let states = (0..len)
        .map(|i| {
            let effect = if i + 1 == len {
                to(&[])
            } else {
                to(&[names[i + 1].as_str()])
            };
            state(
                &[names[i].as_str()],
                vec![tactic(&format!("step{i}"), -0.1, effect)],
            )
        })
        .collect();
    world("chain", &[names[0].as_str()], states)
}

#[tokio::test]
async fn node_budget_counts_expanded_nodes() {
    let sim = Sim::new(chain(5));
    let config = SearchConfig {
        max_nodes: 2,
        ..config()
    };
    let out = run(&sim, &config, false).await;
    assert_eq!(out.status, SearchStatus::NodeBudget);
    assert_eq!(out.stats.nodes_expanded, 2);
}

#[tokio::test]
async fn max_depth_stops_expansion() {
    let sim = Sim::new(chain(4));
    let config = SearchConfig {
        max_depth: 2,
        ..config()
    };
    let out = run(&sim, &config, false).await;
    assert_eq!(out.status, SearchStatus::Exhausted);
    assert_eq!(out.tree.get(2).status, NodeStatus::DepthLimit);
    assert_eq!(out.stats.nodes_expanded, 2);
    // And with room the chain is proved.
    let out = run(
        &Sim::new(chain(4)),
        &SearchConfig {
            max_depth: 4,
            ..config
        },
        false,
    )
    .await;
    assert_eq!(out.status, SearchStatus::Proved);
}

#[tokio::test]
async fn timeout_is_wall_time_per_theorem() {
    let costs = Costs {
        generate: Duration::from_secs(10),
        ..Costs::default()
    };
    let sim = Sim::with(chain(10), costs, false);
    let config = SearchConfig {
        timeout_per_theorem: 25.0,
        ..config()
    };
    let out = run(&sim, &config, false).await;
    assert_eq!(out.status, SearchStatus::Timeout);
    assert_eq!(out.stats.gen_calls, 3);
}

#[tokio::test]
async fn one_generate_request_per_batch_of_nodes() {
    let w = world(
        "bex",
        &["⊢ P"],
        vec![
            state(
                &["⊢ P"],
                vec![
                    tactic("a", -0.1, to(&["⊢ A"])),
                    tactic("b", -0.2, to(&["⊢ B"])),
                    tactic("c", -0.3, to(&["⊢ C"])),
                ],
            ),
            state(&["⊢ C"], vec![tactic("done", -0.1, to(&[]))]),
        ],
    );
    let sim = Sim::new(w);
    let config = SearchConfig {
        batch_expansion_size: 2,
        ..config()
    };
    let out = run(&sim, &config, false).await;
    assert_eq!(out.status, SearchStatus::Proved);
    // Root alone, then A+B together, then C.
    assert_eq!(*sim.gen_calls.lock().unwrap(), vec![1, 2, 1]);
    assert_eq!(out.stats.gen_calls, 3);
    assert_eq!(out.stats.nodes_expanded, 4);
}

#[tokio::test]
async fn value_model_orders_the_frontier_and_never_sees_terminal_states() {
    // Log-probs prefer the long state; energies (state length) prefer the short one.
    let w = world(
        "ebm",
        &["⊢ P"],
        vec![
            state(
                &["⊢ P"],
                vec![
                    tactic("long", -0.1, to(&["⊢ a very long and hard goal"])),
                    tactic("short", -0.2, to(&["⊢ Q"])),
                ],
            ),
            state(
                &["⊢ a very long and hard goal"],
                vec![tactic("fin", -0.1, to(&[]))],
            ),
            state(&["⊢ Q"], vec![tactic("fin2", -0.1, to(&[]))]),
        ],
    );
    let sim = Sim::new(w);
    let config = SearchConfig {
        ebm_weight: 1.0,
        ..config()
    };
    let out = run(&sim, &config, true).await;
    assert_eq!(out.status, SearchStatus::Proved);
    assert_eq!(out.proof_tactics, vec!["short", "fin2"]);
    let scored = sim.scored.lock().unwrap().clone();
    assert_eq!(
        scored,
        vec![
            key(&["⊢ P"]),
            key(&["⊢ a very long and hard goal"]),
            key(&["⊢ Q"])
        ]
    );
    assert!(
        scored.iter().all(|s| !s.is_empty()),
        "terminal states are never scored"
    );
    let (rows, _) = out.trajectory_rows("ebm", 1);
    assert_eq!(rows.last().unwrap().energy, None);
    assert_eq!(rows[2].energy, Some(key(&["⊢ Q"]).len() as f64));
    assert_eq!(rows[2].score, -(key(&["⊢ Q"]).len() as f64));
}

/// A generate call never outlives the theorem: a server that takes 60 s to answer costs a
/// theorem with 1 s left that 1 s (real HTTP to the simulated SGLang, the real clock).
#[tokio::test]
async fn a_slow_generate_call_ends_at_the_theorems_deadline() {
    let w = world(
        "slow",
        &["⊢ P"],
        vec![state(&["⊢ P"], vec![tactic("done", -0.1, to(&[]))])],
    );
    let server = sim::sglang::spawn(
        w.clone(),
        sim::sglang::SglangOptions {
            delay_per_request: Duration::from_secs(60),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let policy_config = search::config::PolicyConfig {
        urls: vec![server.url()],
        ..Default::default()
    };
    let setup = search::request_setup::RequestSetup::from_config(&search::Config {
        policy: policy_config.clone(),
        ..Default::default()
    })
    .unwrap();
    let policy = search::policy::build_policy(&policy_config, &setup).unwrap();
    let config = SearchConfig {
        timeout_per_theorem: 1.0,
        ..config()
    };
    let template = search::templates::PromptTemplate::from_config("{state}").unwrap();
    let clock = search::engine::SystemClock::default();
    let params = search::engine::SearchParams {
        config: &config,
        template: &template,
        default_header: "import Mathlib",
        clock: &clock,
        width: None,
        planner: None,
    };
    let sim = Sim::new(w);
    let (theorem, env) = (theorem(&sim.world), SimEnv(sim.clone()));
    let search = search::engine::search_theorem(&theorem, &params, policy.as_ref(), None, &env);
    // Far below the server's 60 s, far above the theorem's 1 s on a loaded machine.
    let out = tokio::time::timeout(Duration::from_secs(30), search)
        .await
        .expect("the generate call outlived the theorem's deadline");
    assert_eq!(out.status, SearchStatus::Timeout);
    assert_eq!(out.stats.gen_calls, 1);
}

/// The scorer's energies, standardised with a fixed scale (as `EbmClient` does with the
/// served head's figures under `search.ebm_normalize`).
struct Scaled(SimScorer, formats::identity::EnergyScale);

#[async_trait::async_trait]
impl search::value::ValueScorer for Scaled {
    async fn score(
        &self,
        states: &[String],
    ) -> Result<Vec<Option<f64>>, search::value::ValueError> {
        self.0.score(states).await
    }

    fn energy_scale(&self) -> Option<formats::identity::EnergyScale> {
        Some(self.1)
    }
}

#[tokio::test]
async fn a_scorer_s_energy_scale_standardises_energies_in_the_priority_only() {
    let sim = Sim::new(backtracking_world());
    let config = SearchConfig {
        ebm_weight: 0.5,
        ebm_temperature: 2.0,
        ..config()
    };
    let scale = formats::identity::EnergyScale {
        mean: 3.0,
        std: 4.0,
    };
    let template = search::templates::PromptTemplate::from_config("{state}").unwrap();
    let params = search::engine::SearchParams {
        config: &config,
        template: &template,
        default_header: "",
        clock: sim.clock.as_ref(),
        width: None,
        planner: None,
    };
    let out = search::engine::search_theorem(
        &theorem(&sim.world),
        &params,
        &SimPolicy(sim.clone()),
        Some(&Scaled(SimScorer(sim.clone()), scale)),
        &SimEnv(sim.clone()),
    )
    .await;
    let q = out.tree.find_state(&goals(&["⊢ Q"])).unwrap();
    let node = out.tree.get(q);
    // The tree keeps the raw energy (the trajectory's `energy`); the score used it standardised.
    assert_eq!(node.energy, Some(key(&["⊢ Q"]).len() as f64));
    let z = (node.energy.unwrap() - scale.mean) / scale.std;
    let expected = search::engine::priority(&config, node.cum_logprob, node.depth, Some(z));
    assert_eq!(node.score, expected);
}

//! `search.expansion = "proof"`: whole-proof continuations replayed into the tree, pass@n,
//! and probe tactics, over the in-process doubles.

use crate::engine_support;

use engine_support::*;
use formats::results::SearchStatus;
use formats::NodeStatus;
use search::config::{Expansion, SearchConfig};
use sim::world::{Effect, WorldTactic};

fn with_completion(t: &str, logprob: f64, completion: &str) -> WorldTactic {
    WorldTactic {
        completion: Some(completion.into()),
        ..WorldTactic::new(t, logprob, Effect::Error("never sent".into()))
    }
}

fn proof_mode(max_nodes: usize, num_candidates: usize) -> SearchConfig {
    SearchConfig {
        expansion: Expansion::Proof,
        max_nodes,
        num_candidates,
        ..config()
    }
}

/// Root -t1-> S1 -t2-> S2 -t3-> done. At the root the model's most likely sample is a
/// continuation `t1, t2, bad` (it shares `t1, t2` with the real proof), and one with a
/// banned tactic after `t1`.
fn shared_prefix_world() -> sim::world::World {
    world(
        "shared",
        &["⊢ R"],
        vec![
            state(
                &["⊢ R"],
                vec![
                    with_completion("alt", -0.1, "t1\nt2\nbad"),
                    with_completion("alt2", -0.2, "t1\nexact sorry\nt3"),
                    tactic("t1", -0.5, to(&["⊢ S1"])),
                ],
            ),
            state(&["⊢ S1"], vec![tactic("t2", -0.75, to(&["⊢ S2"]))]),
            state(&["⊢ S2"], vec![tactic("t3", -0.25, Effect::Goals(vec![]))]),
        ],
    )
}

#[tokio::test]
async fn one_generate_call_replays_a_chain_sharing_prefixes_without_lean_calls() {
    let sim = Sim::writing_proofs(shared_prefix_world());
    let out = run(&sim, &proof_mode(10, 3), false).await;
    assert_eq!(out.status, SearchStatus::Proved);
    assert_eq!(out.stats.gen_calls, 1);
    assert_eq!(out.proof_tactics, ["t1", "t2", "t3"]);
    // `t1` and `t2` went to Lean once although three continuations start with `t1`; the
    // banned tactic never reached Lean.
    assert_eq!(sim.applied(), ["t1", "t2", "bad", "t3"]);
    assert_eq!(out.stats.replay_reused, 3);
    assert_eq!(out.stats.candidates_banned, 1);
    assert!(out
        .failed
        .iter()
        .any(|f| f.outcome == "banned" && &*f.tactic == "exact sorry"));
    // Each node's log-prob is its own tactic's, whichever sample made it first (the first
    // sample spelled all three tactics in one token, so `t2` had no tokens of its own).
    let node = |t: &str| {
        out.tree
            .nodes()
            .iter()
            .find(|n| n.tactic.as_deref() == Some(t))
            .unwrap()
    };
    assert_eq!(node("t1").llm_logprob, -0.1);
    assert_eq!(node("t2").llm_logprob, 0.0);
    assert_eq!(node("t3").llm_logprob, -0.25);
    assert_eq!(node("t3").depth, 3);
    assert_eq!(node("t3").status, NodeStatus::Proof);
    // Three samples of one token per line: 1 + 1 + 3; the `bad` sample's tokens were all
    // walked, the banned one's second and third line were not.
    assert_eq!(out.stats.tokens_generated, 5);
    assert_eq!(out.stats.tokens_prompt, 30);
}

#[tokio::test]
async fn identical_continuations_are_replayed_once() {
    let sim = Sim::writing_proofs(shared_prefix_world());
    // Six samples cycle through the three distinct ones twice.
    let out = run(&sim, &proof_mode(10, 6), false).await;
    assert_eq!(out.status, SearchStatus::Proved);
    assert_eq!(
        (out.stats.candidates_generated, out.stats.candidates_unique),
        (6, 3)
    );
    assert_eq!(sim.applied(), ["t1", "t2", "bad", "t3"]);
}

/// A chain of `len` steps with a distractor at every state; the tactic-mode search needs
/// one generate call per step.
fn chain_with_distractors(len: usize) -> sim::world::World {
    let states = (0..len)
        .map(|i| {
            let next = if i + 1 == len {
                Effect::Goals(vec![])
            } else {
                to(&[&format!("⊢ g{}", i + 1)])
            };
            state(
                &[&format!("⊢ g{i}")],
                vec![
                    tactic(&format!("step{i}"), -0.5, next),
                    tactic(&format!("wrong{i}"), -1.0, Effect::Error("no".into())),
                ],
            )
        })
        .collect();
    world("chain", &["⊢ g0"], states)
}

#[tokio::test]
async fn proof_mode_proves_what_tactic_mode_proves_with_fewer_generate_calls() {
    let world = chain_with_distractors(5);
    let tactic_sim = Sim::writing_proofs(world.clone());
    let tactic_out = run(&tactic_sim, &config(), false).await;
    let proof_sim = Sim::writing_proofs(world);
    let proof_out = run(&proof_sim, &proof_mode(50, 4), false).await;
    assert_eq!(tactic_out.status, SearchStatus::Proved);
    assert_eq!(proof_out.status, SearchStatus::Proved);
    assert_eq!(proof_out.proof_tactics, tactic_out.proof_tactics);
    assert_eq!(tactic_out.stats.gen_calls, 5);
    assert_eq!(proof_out.stats.gen_calls, 1);
    // Tactic mode used only each sample's first line.
    assert!(tactic_out.stats.tokens_unreplayed > 0);
}

#[tokio::test]
async fn a_transposition_continues_from_the_node_the_tree_has() {
    let w = world(
        "transpose",
        &["⊢ R"],
        vec![
            state(
                &["⊢ R"],
                vec![
                    tactic("a", -0.5, to(&["⊢ S"])),
                    tactic("b", -0.75, to(&["⊢ S"])),
                ],
            ),
            state(&["⊢ S"], vec![tactic("c", -0.5, to(&["⊢ T"]))]),
            state(
                &["⊢ T"],
                vec![tactic("d", -0.5, Effect::Error("no".into()))],
            ),
        ],
    );
    let sim = Sim::writing_proofs(w);
    // Two expansions (one would be pass@n): the root, then `S`, whose samples are all known.
    let out = run(&sim, &proof_mode(2, 2), false).await;
    // `b` reaches the state `a` made; its `c` and `d` are the ones already tried from there.
    assert_eq!(sim.applied(), ["a", "c", "d", "b"]);
    assert_eq!(out.stats.transpositions, 1);
    assert_eq!(out.stats.replay_reused, 2 + 2);
    assert_eq!(out.status, SearchStatus::NodeBudget);
}

#[tokio::test]
async fn pass_at_n_checks_each_sample_whole() {
    let sim = Sim::writing_proofs(shared_prefix_world());
    let config = proof_mode(1, 3);
    assert_eq!(config.pass_at_n(), Some(3));
    let out = run(&sim, &config, false).await;
    assert_eq!(out.status, SearchStatus::Proved);
    // No tactic-by-tactic replay: one check per sample, the banned one not even that.
    assert!(sim.applied().is_empty());
    let checks = sim.checks.lock().unwrap().clone();
    assert_eq!(checks, [vec!["t1", "t2", "bad"], vec!["t1", "t2", "t3"]]);
    assert_eq!(out.proof_tactics, ["t1\nt2\nt3"]);
    assert_eq!(out.stats.check_failures, 1);
    assert_eq!(out.stats.candidates_banned, 1);
}

#[tokio::test]
async fn a_probe_that_closes_the_goal_needs_no_generate_call() {
    let w = world(
        "probed",
        &["⊢ R"],
        vec![
            state(
                &["⊢ R"],
                vec![
                    tactic("simp", -1.0, to(&["⊢ S"])),
                    tactic("t1", -0.5, to(&["⊢ S"])),
                ],
            ),
            state(
                &["⊢ S"],
                vec![
                    tactic("nlinarith", -0.1, Effect::Error("failed".into())),
                    tactic("omega", -3.0, Effect::Goals(vec![])),
                ],
            ),
        ],
    );
    let probes = SearchConfig {
        probe_tactics: vec!["simp".into(), "omega".into()],
        ..proof_mode(10, 1)
    };
    let sim = Sim::writing_proofs(w.clone());
    let out = run(&sim, &probes, false).await;
    assert_eq!(out.status, SearchStatus::Proved);
    // At the root `simp` only makes progress (no child) and `omega` fails; the one
    // generate call's `t1, nlinarith` makes a node where the `omega` probe closes the proof.
    assert_eq!(out.stats.gen_calls, 1);
    assert_eq!(out.proof_tactics, ["t1", "omega"]);
    assert_eq!(
        sim.applied(),
        ["simp", "omega", "t1", "nlinarith", "simp", "omega"]
    );
    assert_eq!((out.stats.probe_calls, out.stats.probe_proofs), (4, 1));
    assert_eq!(out.tree.len(), 3);
    // Closed at the root: no generate call at all.
    let at_root = world("root", &["⊢ S"], w.theorems[0].states[1..].to_vec());
    let sim = Sim::writing_proofs(at_root);
    let out = run(&sim, &probes, false).await;
    assert_eq!(out.status, SearchStatus::Proved);
    assert_eq!(out.stats.gen_calls, 0);
    assert_eq!(out.stats.probe_proofs, 1);
}

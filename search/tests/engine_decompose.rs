//! Subgoal decomposition (`search.decompose`) over the in-process doubles: failed `have`s
//! become holes, closed paths with holes become conditional nodes, holes become subgoal
//! searches in the same budget, and only an assembled proof that passes the whole-proof
//! check is a proof.

use crate::engine_support;

use engine_support::*;
use formats::results::SearchStatus;
use formats::NodeStatus;
use search::config::{Expansion, SearchConfig};
use sim::world::{Effect, World};

const ROOT: &str = "x : ℕ\n⊢ P x";
const WITH_Q: &str = "x : ℕ\nhq : Q x\n⊢ P x";
const WITH_QR: &str = "x : ℕ\nhq : Q x\nhr : R x\n⊢ P x";
const WITH_QS: &str = "x : ℕ\nhq : Q x\nhs : S x\n⊢ P x";
const GOAL_Q: &str = "x : ℕ\n⊢ Q x";
const GOAL_R: &str = "x : ℕ\nhq : Q x\n⊢ R x";
const GOAL_S: &str = "x : ℕ\nhq : Q x\n⊢ S x";

fn fails(message: &str) -> Effect {
    Effect::HaveFails(message.into())
}

/// The model states three lemmas whose proofs it gets wrong: `Q` (true: `omega`), then `R`
/// (false: nothing proves it; its path is the likelier) or `S` (true: `simp`). Both closing
/// tactics are right given their lemmas, so the proof is `Q`, `S` and `exact g hq hs`.
fn lemma_world() -> World {
    world(
        "dc",
        &[ROOT],
        vec![
            state(
                &[ROOT],
                vec![tactic(
                    "have hq : Q x := by nlinarith",
                    -0.1,
                    fails("linarith failed"),
                )],
            ),
            state(
                &[WITH_Q],
                vec![
                    tactic(
                        "have hr : R x := by nlinarith",
                        -0.1,
                        fails("linarith failed"),
                    ),
                    tactic(
                        "have hs : S x := by nlinarith",
                        -0.5,
                        fails("linarith failed"),
                    ),
                ],
            ),
            state(&[WITH_QR], vec![tactic("exact f hq hr", -0.1, to(&[]))]),
            state(&[WITH_QS], vec![tactic("exact g hq hs", -0.1, to(&[]))]),
            state(&[GOAL_Q], vec![tactic("omega", -0.1, to(&[]))]),
            state(
                &[GOAL_R],
                vec![tactic("positivity", -0.1, Effect::Error("failed".into()))],
            ),
            state(&[GOAL_S], vec![tactic("simp", -0.1, to(&[]))]),
        ],
    )
}

fn decomposing() -> SearchConfig {
    SearchConfig {
        decompose: true,
        ..config()
    }
}

#[tokio::test]
async fn a_failed_have_becomes_a_subgoal_search_and_the_assembled_proof_is_checked() {
    let sim = Sim::new(lemma_world());
    let plain = run(&sim, &config(), false).await;
    assert_eq!(
        plain.status,
        SearchStatus::Exhausted,
        "no have's proof works"
    );

    let sim = Sim::new(lemma_world());
    let out = run(&sim, &decomposing(), false).await;
    assert_eq!(out.status, SearchStatus::Proved, "{:?}", out.error);
    assert_eq!(
        out.proof_tactics,
        [
            "have hq : Q x := by\n  omega",
            "have hs : S x := by\n  simp",
            "exact g hq hs"
        ]
    );
    let checked = sim.checks.lock().unwrap().clone();
    assert_eq!(
        checked,
        std::slice::from_ref(&out.proof_tactics),
        "one check: the assembled proof"
    );
    let s = &out.stats;
    assert_eq!(
        (s.holes_opened, s.conditional_nodes, s.subgoals_opened),
        (3, 2, 3)
    );
    assert_eq!((s.subgoals_proved, s.subgoals_reused), (2, 1));
    assert_eq!(s.proved_by_decomposition, 1);
    // The holes went to Lean in place of the failed haves, and tactics went to the holes.
    let applied = sim.applied();
    for sent in [
        "have hq : Q x := by nlinarith",
        "have hq : Q x := by sorry",
        "omega",
        "positivity",
        "simp",
    ] {
        assert!(applied.contains(&sent.to_owned()), "{sent} in {applied:?}");
    }
    // The false lemma's search was opened and never closed; its conditional node waits.
    let conditional: Vec<_> = out
        .tree
        .nodes()
        .iter()
        .filter(|n| n.status == NodeStatus::Conditional)
        .map(|n| n.tactic.as_deref().unwrap().to_owned())
        .collect();
    assert_eq!(conditional, ["exact f hq hr"]);

    // Rows: subgoal roots have no parent and name the conditional node that opened them;
    // the subgoal proofs the proof used are on the proof path.
    let (rows, failed) = out.trajectory_rows("dc", 1);
    let opener = |tactic: &str| rows.iter().find(|r| r.tactic.as_deref() == Some(tactic));
    let first = opener("exact f hq hr").unwrap().node_id;
    let second = opener("exact g hq hs").unwrap().node_id;
    let root_of = |goal: &str| {
        rows.iter()
            .find(|r| r.state == goal && r.parent_id.is_none())
    };
    assert_eq!(root_of(GOAL_Q).unwrap().subgoal_of, Some(first));
    assert_eq!(root_of(GOAL_R).unwrap().subgoal_of, Some(first));
    assert_eq!(root_of(GOAL_S).unwrap().subgoal_of, Some(second));
    let on_path: Vec<&str> = rows
        .iter()
        .filter(|r| r.on_proof_path)
        .map(|r| r.tactic.as_deref().unwrap_or(r.state.as_str()))
        .collect();
    assert_eq!(
        on_path,
        [
            ROOT,
            "have hq : Q x := by sorry",
            "have hs : S x := by sorry",
            GOAL_Q,
            "omega",
            "exact g hq hs",
            GOAL_S,
            "simp"
        ]
    );
    assert!(rows
        .iter()
        .filter(|r| r.subgoal_of.is_none())
        .all(|r| r.state != GOAL_Q));
    assert!(
        failed
            .iter()
            .any(|f| f.tactic == "have hq : Q x := by nlinarith" && f.outcome == "error"),
        "the failed original stays a failed attempt"
    );
}

#[tokio::test]
async fn a_rejected_assembly_is_check_failed_and_never_a_proof() {
    let sim = Sim::with(lemma_world(), Costs::default(), true);
    let out = run(&sim, &decomposing(), false).await;
    assert_ne!(out.status, SearchStatus::Proved);
    assert!(out
        .tree
        .nodes()
        .iter()
        .any(|n| n.status == NodeStatus::CheckFailed));
    assert!(out.stats.check_failures >= 1);
    assert_eq!(out.stats.proved_by_decomposition, 0);
}

#[tokio::test]
async fn holes_on_a_path_stop_at_max_subgoals_and_subgoals_share_the_node_budget() {
    let sim = Sim::new(lemma_world());
    let one = SearchConfig {
        max_subgoals: 1,
        ..decomposing()
    };
    let out = run(&sim, &one, false).await;
    assert_eq!(out.status, SearchStatus::Exhausted);
    assert_eq!(out.stats.holes_opened, 1);

    // Root, the three hole nodes, the first conditional node's two subgoal roots: six
    // expansions before the last subgoal search could start.
    let sim = Sim::new(lemma_world());
    let tight = SearchConfig {
        max_nodes: 5,
        ..decomposing()
    };
    let out = run(&sim, &tight, false).await;
    assert_eq!(out.status, SearchStatus::NodeBudget);
    assert_eq!(out.stats.nodes_expanded, 5);
}

#[tokio::test]
async fn proof_mode_replays_past_a_failed_have_from_its_hole() {
    // The model writes each continuation past its failing haves (it believes them).
    let sim = Sim::writing_proofs(lemma_world());
    let proof = SearchConfig {
        expansion: Expansion::Proof,
        ..decomposing()
    };
    let out = run(&sim, &proof, false).await;
    assert_eq!(out.status, SearchStatus::Proved, "{:?}", out.error);
    assert_eq!(out.stats.proved_by_decomposition, 1);
    // The root's continuations write `have hq …`, `have hr …`, `exact f hq hr`: the replay
    // went on from each hole to the first conditional node.
    let applied = sim.applied();
    let replayed = ["have hr : R x := by sorry", "exact f hq hr"];
    assert!(
        replayed.iter().all(|t| applied.contains(&t.to_string())),
        "{applied:?}"
    );
}

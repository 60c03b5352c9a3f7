//! `search.speculate`: the next nodes' generate request goes out while Lean checks the current
//! expansion, and is used only when those nodes are still the best, so the search is the
//! same tree as without it; a miss (the children outranked them) drops the request.

use crate::engine_support;

use engine_support::*;
use formats::results::SearchStatus;
use search::config::SearchConfig;
use search::engine::SearchOutcome;
use sim::world::{Effect, World};

/// Everything the search decided, per node and per failed attempt.
fn decisions(out: &SearchOutcome) -> Vec<String> {
    let nodes = out.tree.nodes().iter().map(|n| {
        format!(
            "node {} <- {:?} {:?} {:?} {:?} {}",
            n.id, n.parent, n.tactic, n.goals, n.status, n.score
        )
    });
    let failed = out.failed.iter().map(|f| {
        format!(
            "failed {} {} {:?} {}",
            f.parent, f.tactic, f.outcome, f.message
        )
    });
    nodes.chain(failed).collect()
}

/// The same world searched without and with speculation: (without, with, generate calls
/// each made).
async fn both(world: World, config: SearchConfig) -> (SearchOutcome, SearchOutcome) {
    let plain = run(&Sim::new(world.clone()), &config, false).await;
    let speculating = run(
        &Sim::new(world),
        &SearchConfig {
            speculate: true,
            ..config
        },
        false,
    )
    .await;
    assert_eq!(decisions(&plain), decisions(&speculating));
    assert_eq!(plain.status, speculating.status);
    assert_eq!(plain.proof_tactics, speculating.proof_tactics);
    assert_eq!(plain.stats.speculated, 0);
    (plain, speculating)
}

#[tokio::test]
async fn a_speculation_still_best_is_used_and_the_tree_is_the_same() {
    // Root: `dead` (ranked first) and `good`. While Lean refutes `dead`'s only tactic, the
    // request for `good`'s node is in flight; no child outranks it, so it is used.
    let (plain, speculating) = both(backtracking_world(), config()).await;
    assert_eq!(speculating.status, SearchStatus::Proved);
    assert_eq!(
        (
            speculating.stats.speculated,
            speculating.stats.speculation_misses
        ),
        (1, 0)
    );
    // The used speculation replaced the request the plain search made then.
    assert_eq!(plain.stats.gen_calls, 3);
    assert_eq!(speculating.stats.gen_calls, 3);
}

#[tokio::test]
async fn children_that_outrank_the_speculated_node_make_a_miss() {
    // `a` leads down a chain whose nodes all outrank `b`'s: each speculation pops `b`'s node,
    // and each time the new child outranks it. The last one is in flight when the proof ends.
    let w = world(
        "chain",
        &["⊢ P"],
        vec![
            state(
                &["⊢ P"],
                vec![
                    tactic("a", -0.1, to(&["⊢ A"])),
                    tactic("b", -2.0, to(&["⊢ B"])),
                ],
            ),
            state(&["⊢ A"], vec![tactic("a2", -0.1, to(&["⊢ A2"]))]),
            state(&["⊢ A2"], vec![tactic("a3", -0.1, to(&[]))]),
            state(&["⊢ B"], vec![tactic("b2", -0.1, to(&[]))]),
        ],
    );
    let (plain, speculating) = both(w, config()).await;
    assert_eq!(speculating.proof_tactics, ["a", "a2", "a3"]);
    assert_eq!(
        (
            speculating.stats.speculated,
            speculating.stats.speculation_misses
        ),
        (2, 1)
    );
    // Every speculated request is a request: two more than the plain search's three.
    assert_eq!(plain.stats.gen_calls, 3);
    assert_eq!(speculating.stats.gen_calls, 5);
}

#[tokio::test]
async fn a_budget_bound_search_is_the_same_tree_with_speculation() {
    // Many siblings of equal rank and failing grandchildren: the speculated node is mostly
    // still the best, and the node budget ends both searches at the same node.
    let mut states = vec![state(
        &["⊢ root"],
        (0..6)
            .map(|i| {
                let g = format!("⊢ s{i}");
                tactic(&format!("t{i}"), -0.5 - f64::from(i) * 0.1, to(&[&g]))
            })
            .collect(),
    )];
    for i in 0..6 {
        let g = format!("⊢ s{i}");
        states.push(state(
            &[&g],
            vec![tactic("x", -0.1, Effect::Error(format!("fails at {i}")))],
        ));
    }
    let w = world("wide", &["⊢ root"], states);
    let config = SearchConfig {
        max_nodes: 4,
        ..config()
    };
    let (plain, speculating) = both(w, config).await;
    assert_eq!(plain.status, SearchStatus::NodeBudget);
    assert_eq!(speculating.stats.nodes_expanded, 4);
    assert_eq!(speculating.stats.speculation_misses, 0);
    assert!(speculating.stats.speculated >= 2, "{:?}", speculating.stats);
}

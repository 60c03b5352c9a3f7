//! Negative tiers: ratios, the shortfall rule, and what may never be a negative.

use crate::traj_fixture;

use ebm::train::lr_at;
use ebm::train_sampler::{NegativesFrom, Sampler, TierCounts, TierPlan};
use ebm::trajectories::Trajectories;
use formats::NodeStatus;
use rand::rngs::StdRng;
use rand::SeedableRng;
use traj_fixture::row;

/// Theorem `a`: root 0 -> {1 (path), 2, 3}; 1 -> {4 (path), 5}; 2 -> {6, 7, 8, 9}; node 9
/// repeats node 4's state (a transposition). Theorem `b`: root 0 -> {1, 2}, no proof.
fn trees() -> Trajectories {
    let mut rows = vec![
        row("a", 0, None, 0, true, 0.0),
        row("a", 1, Some(0), 1, true, -0.1),
        row("a", 2, Some(0), 1, false, -0.2),
        row("a", 3, Some(0), 1, false, -0.3),
        row("a", 4, Some(1), 2, true, -0.1),
        row("a", 5, Some(1), 2, false, -0.4),
        row("a", 6, Some(2), 2, false, -0.4),
        row("a", 7, Some(2), 2, false, -0.4),
        row("a", 8, Some(2), 2, false, -0.4),
        row("a", 9, Some(2), 2, false, -0.4),
        row("b", 0, None, 0, false, 0.0),
        row("b", 1, Some(0), 1, false, -0.5),
        row("b", 2, Some(0), 1, false, -0.6),
    ];
    rows[9].state = rows[4].state.clone();
    rows[8].status = NodeStatus::Unverified;
    Trajectories::from_rows(rows).unwrap()
}

fn id(traj: &Trajectories, theorem: &str, node: u32) -> usize {
    traj.nodes
        .iter()
        .position(|n| traj.runs[n.run].theorem == theorem && n.node_id == node)
        .unwrap()
}

#[test]
fn tier_counts_follow_the_ratios() {
    let plan = |k, h, m| TierPlan {
        negatives: k,
        hard_ratio: h,
        medium_ratio: m,
        negatives_from: NegativesFrom::All,
    };
    assert_eq!(plan(7, 0.5, 0.3).counts(), (4, 2, 1));
    assert_eq!(plan(7, 1.0, 0.0).counts(), (7, 0, 0));
    assert_eq!(plan(4, 0.0, 0.0).counts(), (0, 0, 4));
}

#[test]
fn shortfall_moves_to_the_next_tier_and_copies_of_proofs_are_never_negatives() {
    let traj = trees();
    let plan = TierPlan {
        negatives: 7,
        hard_ratio: 0.5,
        medium_ratio: 0.3,
        negatives_from: NegativesFrom::All,
    };
    let sampler = Sampler::new(&traj, plan, |_| true);
    let (a1, a4) = (id(&traj, "a", 1), id(&traj, "a", 4));
    let mut positives = sampler.positives().to_vec();
    positives.sort();
    assert_eq!(positives, vec![a1, a4], "roots are not positives");

    let mut rng = StdRng::seed_from_u64(1);
    for _ in 0..50 {
        let mut counts = TierCounts::default();
        // a4 has one off-path sibling (a5): 3 hard slots fall to medium, which has only 4 nodes
        // (a2, a3, a6, a7; a8 is unverified, a9 a transposition of a4), so easy gets 1 + 1 (b0-b2).
        let ex = sampler.sample(a4, &mut rng, &mut counts).unwrap();
        assert_eq!(ex.negatives.len(), 7);
        assert_eq!(
            counts,
            TierCounts {
                hard: 1,
                medium: 4,
                easy: 2,
                repeated: 0
            }
        );
        assert!(ex.negatives.contains(&id(&traj, "a", 5)));
        assert!(!ex.negatives.contains(&id(&traj, "a", 9)));
        assert!(!ex.negatives.contains(&id(&traj, "a", 8)));
        assert!(ex.negatives.iter().all(|&n| !traj.nodes[n].on_path));
        let easy: Vec<usize> = ex
            .negatives
            .iter()
            .copied()
            .filter(|&n| traj.nodes[n].run != traj.nodes[a4].run)
            .collect();
        assert_eq!(easy.len(), 2);
    }
}

#[test]
fn exhausted_tiers_repeat_drawn_negatives() {
    let traj = trees();
    let plan = TierPlan {
        negatives: 12,
        hard_ratio: 0.5,
        medium_ratio: 0.3,
        negatives_from: NegativesFrom::All,
    };
    // Only theorem a is usable: no easy negatives at all.
    let sampler = Sampler::new(&traj, plan, |i| traj.runs[traj.nodes[i].run].theorem == "a");
    let mut counts = TierCounts::default();
    let a1 = id(&traj, "a", 1);
    let ex = sampler
        .sample(a1, &mut StdRng::seed_from_u64(2), &mut counts)
        .unwrap();
    assert_eq!(ex.negatives.len(), 12);
    // Off path in a: 2, 3 (siblings), 5, 6, 7 (8 is unverified, 9 repeats the proof-path
    // state of 4 and counts once, as 4) -> 5 distinct, 7 repeats.
    assert_eq!(
        (counts.hard, counts.medium, counts.easy, counts.repeated),
        (2, 3, 0, 7)
    );
}

#[test]
fn learning_rate_warms_up_then_decays_to_zero() {
    let lrs: Vec<f64> = (0..10).map(|s| lr_at(1.0, s, 2, 10)).collect();
    assert_eq!(&lrs[..3], &[0.5, 1.0, 1.0]);
    assert!(lrs.windows(2).skip(1).all(|w| w[1] <= w[0]));
    assert!(lrs[9] < 0.05);
    assert_eq!(lr_at(1.0, 0, 0, 1), 1.0);
}

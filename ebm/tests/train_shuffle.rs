//! `ebm train --shuffle-labels SEED`, the control: `on_proof_path` permuted among the
//! siblings of each parent, the same way for the same seed, and the seed in `train.json`.

use crate::traj_fixture;

use std::collections::BTreeMap;

use candle_core::Device;
use ebm::train::{train, TrainConfig};
use ebm::trajectories::Trajectories;

fn trajectories() -> Trajectories {
    Trajectories::from_rows(traj_fixture::theorems("t", 40, 5).concat()).unwrap()
}

fn labels(traj: &Trajectories) -> Vec<(bool, Option<u32>)> {
    traj.nodes
        .iter()
        .map(|n| (n.on_path, n.remaining_depth))
        .collect()
}

/// Each parent's children's labels, sorted: what a permutation among siblings keeps.
fn labels_by_parent(traj: &Trajectories) -> BTreeMap<usize, Vec<(bool, Option<u32>)>> {
    let mut by_parent: BTreeMap<usize, Vec<(bool, Option<u32>)>> = BTreeMap::new();
    for n in &traj.nodes {
        if let Some(parent) = n.parent {
            by_parent
                .entry(parent)
                .or_default()
                .push((n.on_path, n.remaining_depth));
        }
    }
    by_parent.values_mut().for_each(|v| v.sort());
    by_parent
}

#[test]
fn labels_are_permuted_among_siblings_only_and_the_same_way_for_a_seed() {
    let truth = trajectories();
    let shuffle = |seed: u64| {
        let mut t = truth.clone();
        let moved = t.shuffle_labels(seed);
        (t, moved)
    };
    let (once, moved) = shuffle(11);
    let (again, moved_again) = shuffle(11);
    assert_eq!(
        labels(&once),
        labels(&again),
        "the same seed, the same labels"
    );
    assert_eq!(moved, moved_again);
    let (other, _) = shuffle(12);
    assert_ne!(labels(&once), labels(&other), "another seed, other labels");

    let changed = (0..truth.nodes.len())
        .filter(|&i| truth.nodes[i].on_path != once.nodes[i].on_path)
        .count();
    assert_eq!(moved, changed);
    // 32 proved theorems with 3 decisions of 4 children each: most labels move.
    assert!(moved > 50, "{moved}");
    // Among siblings only: each parent's children keep the same labels between them (the
    // remaining depth going with its label), so every theorem keeps its proof path's length.
    assert_eq!(labels_by_parent(&truth), labels_by_parent(&once));
    for (i, (t, s)) in truth.nodes.iter().zip(&once.nodes).enumerate() {
        if t.parent.is_none() || t.status.is_terminal() {
            assert_eq!(
                (t.on_path, t.remaining_depth),
                (s.on_path, s.remaining_depth),
                "node {i}: roots and terminal nodes keep their labels"
            );
        }
        assert_eq!(
            (&t.state, t.parent, t.status),
            (&s.state, s.parent, s.status)
        );
    }
}

#[test]
fn train_records_the_seed_and_trains_on_the_shuffled_labels() {
    let trees = traj_fixture::theorems("t", 40, 5);
    let traj = Trajectories::from_rows(trees.concat()).unwrap();
    let cache = traj_fixture::cache(&[&trees], 4);
    let dir = tempfile::tempdir().unwrap();
    let cfg = TrainConfig {
        epochs: 2,
        batch_size: 16,
        hidden: vec![8],
        val_fraction: 0.2,
        ..TrainConfig::default()
    };
    let train_json = |out: &std::path::Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(out.join("train.json")).unwrap()).unwrap()
    };

    let plain = train(&traj, &cache, &cfg, &Device::Cpu, &dir.path().join("plain")).unwrap();
    assert_eq!(plain.labels_moved, None);
    let recorded = train_json(&dir.path().join("plain"));
    assert_eq!(
        recorded["config"]["shuffle_labels"],
        serde_json::Value::Null
    );

    let out = dir.path().join("control");
    let control_cfg = TrainConfig {
        shuffle_labels: Some(11),
        ..cfg
    };
    let control = train(&traj, &cache, &control_cfg, &Device::Cpu, &out).unwrap();
    let mut shuffled = traj.clone();
    let moved = shuffled.shuffle_labels(11);
    assert_eq!(control.labels_moved, Some(moved));
    let recorded = train_json(&out);
    assert_eq!(recorded["config"]["shuffle_labels"], 11);
    assert_eq!(recorded["labels_moved"], moved);
    // The caller's trajectories are left true, and the split is the unshuffled one.
    assert_eq!(labels(&traj), labels(&trajectories()));
    assert_eq!(control.val_theorems, plain.val_theorems);
    // Trained on other labels: other positives, other metrics.
    assert_ne!(control.epochs, plain.epochs);
}

//! Energies that cannot separate anything are reported as collapsed, in the metrics log too.

use crate::traj_fixture;

use candle_core::Device;
use ebm::embedding_cache::EmbeddingCache;
use ebm::train::{train, TrainConfig};
use ebm::trajectories::Trajectories;

#[test]
fn identical_embeddings_warn_of_collapse() {
    let trees = traj_fixture::theorems("t", 10, 5);
    let mut cache = EmbeddingCache::new(traj_fixture::DIM);
    for r in trees.iter().flatten() {
        cache
            .insert(r.state.clone(), &[0.5; traj_fixture::DIM])
            .unwrap();
    }
    let traj = Trajectories::from_rows(trees.concat()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = TrainConfig {
        epochs: 2,
        hidden: vec![8],
        ..TrainConfig::default()
    };
    let report = train(&traj, &cache, &cfg, &Device::Cpu, dir.path()).unwrap();
    for epoch in &report.epochs {
        assert_eq!(epoch.energy_std, 0.0);
        assert_eq!(epoch.rank1_accuracy, 0.0, "ties are not wins");
        assert!(
            epoch.warnings.iter().any(|w| w.contains("collapsed")),
            "{epoch:?}"
        );
    }
    let log = std::fs::read_to_string(dir.path().join("metrics.jsonl")).unwrap();
    assert!(log.lines().all(|l| l.contains("collapsed")));
    assert!(dir.path().join("head.json").exists());
    assert!(dir
        .path()
        .join("checkpoints/epoch-002.safetensors")
        .exists());
}

#[test]
fn bad_options_are_refused() {
    let traj = Trajectories::from_rows(traj_fixture::theorems("t", 3, 5).concat()).unwrap();
    let cache = EmbeddingCache::new(traj_fixture::DIM);
    let dir = tempfile::tempdir().unwrap();
    let cfg = TrainConfig {
        hard_ratio: 0.8,
        medium_ratio: 0.3,
        ..TrainConfig::default()
    };
    let err = train(&traj, &cache, &cfg, &Device::Cpu, dir.path())
        .unwrap_err()
        .to_string();
    assert!(err.contains("sum to at most 1"), "{err}");
    let err = train(
        &traj,
        &cache,
        &TrainConfig::default(),
        &Device::Cpu,
        dir.path(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("nothing to train on"), "{err}");
}

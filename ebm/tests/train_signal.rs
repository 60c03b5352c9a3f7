//! Train on synthetic trajectories whose proof-path states carry a signal, evaluate on
//! held-out theorems; with shuffled labels the same pipeline must stay near random.

use crate::traj_fixture;

use std::path::{Path, PathBuf};

use candle_core::Device;
use ebm::embedding_cache::EmbeddingCache;
use ebm::energy_head::EnergyHead;
use ebm::eval::{evaluate, EvalReport};
use ebm::train::{train, TrainConfig, TrainReport};
use ebm::trajectories;

fn config() -> TrainConfig {
    TrainConfig {
        epochs: 12,
        lr: 3e-3,
        batch_size: 16,
        seed: 7,
        val_fraction: 0.2,
        hidden: vec![32, 16],
        ..TrainConfig::default()
    }
}

/// Writes train and held-out trajectory dirs plus one cache covering both; trains on the
/// first and evaluates on the second.
fn run(root: &Path, shuffle: bool) -> (TrainReport, EvalReport) {
    run_with(root, shuffle, &config())
}

fn run_with(root: &Path, shuffle: bool, cfg: &TrainConfig) -> (TrainReport, EvalReport) {
    let truth_train = traj_fixture::theorems("train_", 60, 1);
    let held_out = traj_fixture::theorems("held_", 30, 2);
    let mut train_trees = truth_train.clone();
    if shuffle {
        traj_fixture::shuffle_labels(&mut train_trees, 3);
    }
    let (train_dir, eval_dir) = (
        root.join("train/trajectories"),
        root.join("eval/trajectories"),
    );
    traj_fixture::write(&train_dir, &train_trees, vec![]);
    traj_fixture::write(&eval_dir, &held_out, vec![]);
    let cache_path: PathBuf = root.join("embeddings.parquet");
    traj_fixture::cache(&[&truth_train, &held_out], 4)
        .save(&cache_path)
        .unwrap();

    let cache = EmbeddingCache::load(&cache_path).unwrap();
    let (traj, _) = trajectories::load(&[train_dir.display().to_string()]).unwrap();
    let out = root.join("out");
    let report = train(&traj, &cache, cfg, &Device::Cpu, &out).unwrap();
    let head = EnergyHead::load(&out.join("head.safetensors"), &Device::Cpu).unwrap();
    let (held, _) = trajectories::load(&[eval_dir.display().to_string()]).unwrap();
    let eval = evaluate(&held, &cache, &head, &Device::Cpu).unwrap();
    eprintln!(
        "shuffled={shuffle}: {:?}\n{}",
        report.epochs.last(),
        eval.render()
    );
    (report, eval)
}

#[test]
fn learnable_signal_gives_high_sibling_accuracy_on_held_out_theorems() {
    let dir = tempfile::tempdir().unwrap();
    let (report, eval) = run(dir.path(), false);
    let last = report.epochs.last().unwrap();
    assert!(last.energy_gap > 0.0, "{last:?}");
    assert!(eval.decisions >= 30, "{eval:?}");
    assert!(eval.random_baseline < 0.4, "{eval:?}");
    assert!(eval.ebm_accuracy >= 0.9, "{eval:?}");
    assert!(eval.energy_on_path_mean.unwrap() < eval.energy_sibling_mean.unwrap());
    let metrics = std::fs::read_to_string(dir.path().join("out/metrics.jsonl")).unwrap();
    assert_eq!(metrics.lines().count(), report.epochs.len());
}

#[test]
fn shuffled_labels_stay_near_random() {
    let dir = tempfile::tempdir().unwrap();
    let (_, eval) = run(dir.path(), true);
    assert!(eval.random_baseline < 0.4, "{eval:?}");
    assert!(
        (eval.ebm_accuracy - eval.random_baseline).abs() < 0.15,
        "shuffled labels should not beat random: {eval:?}"
    );
}

#[test]
fn same_seed_gives_identical_metrics() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (report_a, eval_a) = run(a.path(), false);
    let (report_b, eval_b) = run(b.path(), false);
    assert_eq!(report_a.epochs, report_b.epochs);
    assert_eq!(eval_a, eval_b);
    let metrics = |d: &Path| std::fs::read_to_string(d.join("out/metrics.jsonl")).unwrap();
    assert_eq!(metrics(a.path()), metrics(b.path()));
}

/// The two BurnQED options, each alone, on the same signal: the numbers the note quotes
/// (held-out sibling accuracy, eval loss), and they must not break learning.
#[test]
fn learnable_temperature_and_depth_loss_keep_the_signal() {
    let base = config();
    let variants = [
        ("baseline", base.clone()),
        (
            "learnable temperature",
            TrainConfig {
                learnable_temperature: true,
                ..base.clone()
            },
        ),
        (
            "depth loss 0.3",
            TrainConfig {
                depth_loss_weight: 0.3,
                ..base.clone()
            },
        ),
    ];
    for (name, cfg) in variants {
        let dir = tempfile::tempdir().unwrap();
        let (report, eval) = run_with(dir.path(), false, &cfg);
        let last = report.epochs.last().unwrap();
        println!(
            "{name}: held-out accuracy {:.4} (random {:.4}), eval loss {:.4}, gap {:.3}, temperature {:?}",
            eval.ebm_accuracy, eval.random_baseline, last.eval_loss, last.energy_gap, last.temperature
        );
        assert!(eval.ebm_accuracy >= 0.9, "{name}: {eval:?}");
        assert_eq!(last.temperature.is_some(), cfg.learnable_temperature);
        if let Some(t) = last.temperature {
            assert!(t != 1.0, "the temperature was learned: {t}");
        }
    }
}

/// A sweep writes its theorems in the order they finish; the same trees in another order
/// train the same head.
#[test]
fn the_order_theorems_finished_in_does_not_change_the_head() {
    let trees = traj_fixture::theorems("t", 24, 5);
    let cache_path = |root: &Path| root.join("embeddings.parquet");
    let train_on = |root: &Path, order: &[Vec<formats::trajectory::NodeRow>]| {
        let dir = root.join("trajectories");
        traj_fixture::write(&dir, order, vec![]);
        traj_fixture::cache(&[&trees], 4)
            .save(&cache_path(root))
            .unwrap();
        let cache = EmbeddingCache::load(&cache_path(root)).unwrap();
        let (traj, _) = trajectories::load(&[dir.display().to_string()]).unwrap();
        train(&traj, &cache, &config(), &Device::Cpu, &root.join("out")).unwrap()
    };
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut reversed = trees.clone();
    reversed.reverse();
    let (first, second) = (train_on(a.path(), &trees), train_on(b.path(), &reversed));
    assert_eq!(first.epochs, second.epochs);
    let weights = |root: &Path| std::fs::read(root.join("out/head.safetensors")).unwrap();
    assert_eq!(weights(a.path()), weights(b.path()));
}

//! Training and evaluation that can't flatter themselves: terminal nodes are neither
//! positives, negatives nor decisions; a state counts once per run; `--negatives-from
//! expanded` leaves never-expanded nodes out; `ebm eval --split val` sees only held-out
//! theorems.

use crate::traj_fixture;

use std::collections::HashSet;

use candle_core::Device;
use ebm::embedding_cache::EmbeddingCache;
use ebm::eval::{evaluate_checkpoint, Split};
use ebm::train::{check_head_encoder, train, TrainConfig};
use ebm::train_sampler::{NegativesFrom, Sampler, TierCounts, TierPlan};
use ebm::trajectories::Trajectories;
use formats::trajectory::NodeRow;
use formats::NodeStatus;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use traj_fixture::row;

fn plan(k: usize, hard: f64, medium: f64, from: NegativesFrom) -> TierPlan {
    TierPlan {
        negatives: k,
        hard_ratio: hard,
        medium_ratio: medium,
        negatives_from: from,
    }
}

/// (theorem, node id) of each node index.
fn ids(traj: &Trajectories, nodes: &[usize]) -> HashSet<(String, u32)> {
    nodes
        .iter()
        .map(|&i| {
            let n = &traj.nodes[i];
            (traj.runs[n.run].theorem.clone(), n.node_id)
        })
        .collect()
}

fn decisions(traj: &Trajectories) -> Vec<(String, u32, u32, usize)> {
    traj.decisions()
        .iter()
        .map(|d| {
            let p = &traj.nodes[d.parent];
            (
                traj.runs[p.run].theorem.clone(),
                p.node_id,
                traj.nodes[d.chosen].node_id,
                d.children.len(),
            )
        })
        .collect()
}

#[test]
fn terminal_nodes_change_no_positive_and_no_decision() {
    let with: Vec<NodeRow> = traj_fixture::theorems("t", 20, 5).concat();
    assert!(with.iter().any(|r| r.status == NodeStatus::Proof));
    let without: Vec<NodeRow> = with
        .iter()
        .filter(|r| !r.status.is_terminal())
        .cloned()
        .collect();
    let (a, b) = (
        Trajectories::from_rows(with).unwrap(),
        Trajectories::from_rows(without).unwrap(),
    );
    let p = plan(4, 0.5, 0.3, NegativesFrom::All);
    let (sa, sb) = (Sampler::new(&a, p, |_| true), Sampler::new(&b, p, |_| true));
    assert!(!sa.positives().is_empty());
    assert_eq!(ids(&a, sa.positives()), ids(&b, sb.positives()));
    assert!(sa
        .positives()
        .iter()
        .all(|&i| !a.nodes[i].status.is_terminal()));
    assert_eq!(decisions(&a), decisions(&b));
    assert!(!decisions(&a).is_empty());
    // No decision holds a terminal child, nor a negative draw ever picks one.
    for d in a.decisions() {
        assert!(d.children.iter().all(|&c| !a.nodes[c].status.is_terminal()));
    }
    let mut rng = StdRng::seed_from_u64(1);
    let mut counts = TierCounts::default();
    for ex in sa.epoch(&mut rng, &mut counts) {
        assert!(ex
            .negatives
            .iter()
            .all(|&n| !a.nodes[n].status.is_terminal()));
    }
}

#[test]
fn a_state_counts_once_per_run() {
    // Root 0 -> path 1 -> path 2; off-path 3, 4 under 0 and 5 under 1; 4 and 5 repeat
    // state of 3, and the second path node repeats on a sibling.
    let mut rows = vec![
        row("a", 0, None, 0, true, 0.0),
        row("a", 1, Some(0), 1, true, -1.0),
        row("a", 2, Some(1), 2, true, -1.0),
        row("a", 3, Some(0), 1, false, -1.0),
        row("a", 4, Some(0), 1, false, -1.0),
        row("a", 5, Some(1), 2, false, -1.0),
        row("a", 6, Some(1), 2, false, -1.0),
    ];
    let dup = rows[3].state.clone();
    rows[4].state = dup.clone();
    rows[5].state = dup;
    for r in &mut rows[..2] {
        r.status = NodeStatus::Expanded;
    }
    let traj = Trajectories::from_rows(rows).unwrap();
    // Decision at 0: children 1, 3, 4 with 4 == 3 -> two distinct children.
    let d = decisions(&traj);
    assert_eq!(d, vec![("a".into(), 0, 1, 2), ("a".into(), 1, 2, 3)]);
    // Negatives of the run: states of 3 (= 4 = 5) and 6: two distinct, so with K = 3 one
    // slot is a repeat.
    let sampler = Sampler::new(&traj, plan(3, 1.0, 0.0, NegativesFrom::All), |_| true);
    let mut counts = TierCounts::default();
    let ex = sampler
        .sample(1, &mut StdRng::seed_from_u64(3), &mut counts)
        .unwrap();
    let states: HashSet<&str> = ex
        .negatives
        .iter()
        .map(|&n| traj.nodes[n].state.as_str())
        .collect();
    assert_eq!(states.len(), 2, "{ex:?}");
    assert_eq!(counts.repeated, 1);
}

#[test]
fn negatives_from_expanded_leaves_open_nodes_out() {
    let rows: Vec<NodeRow> = traj_fixture::theorems("t", 20, 9).concat();
    let traj = Trajectories::from_rows(rows).unwrap();
    let open = |i: usize| traj.nodes[i].status == NodeStatus::Open;
    assert!((0..traj.nodes.len()).any(|i| open(i) && !traj.nodes[i].on_path));
    let drawn = |from| {
        let sampler = Sampler::new(&traj, plan(6, 0.5, 0.3, from), |_| true);
        let mut rng = StdRng::seed_from_u64(2);
        let mut counts = TierCounts::default();
        (0..5)
            .flat_map(|_| sampler.epoch(&mut rng, &mut counts))
            .flat_map(|ex| ex.negatives)
            .collect::<Vec<usize>>()
    };
    assert!(drawn(NegativesFrom::All).into_iter().any(open));
    assert!(!drawn(NegativesFrom::Expanded).into_iter().any(open));
}

/// Embeddings that carry nothing but noise, one per distinct state: a head can only
/// memorise them.
fn noise_cache(trees: &[Vec<NodeRow>], seed: u64) -> EmbeddingCache {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut cache = EmbeddingCache::new(traj_fixture::DIM);
    for r in trees.iter().flatten() {
        if !cache.contains(&r.state) {
            let e: Vec<f32> = (0..traj_fixture::DIM)
                .map(|_| rng.random_range(-1.0..1.0))
                .collect();
            cache.insert(r.state.clone(), &e).unwrap();
        }
    }
    cache
}

/// A head trained on shuffled labels over embeddings that carry nothing it could generalise,
/// evaluated with `--split val` on the true trajectories of the theorems it never saw: no
/// better (and no worse) than random.
#[test]
fn split_val_of_a_shuffled_run_stays_within_005_of_random() {
    let dir = tempfile::tempdir().unwrap();
    let truth = traj_fixture::theorems("s", 400, 11);
    let mut trees = truth.clone();
    traj_fixture::shuffle_labels(&mut trees, 12);
    let mut cache = noise_cache(&trees, 13);
    let model = |config: &str| formats::identity::ModelIdentity {
        config_sha256: config.into(),
        tokenizer_sha256: "t".into(),
        dtype: "f32".into(),
        pooling: "mean".into(),
        head_sha256: None,
    };
    cache.set_identity(Some(model("a"))).unwrap();
    let out = dir.path().join("run");
    let cfg = TrainConfig {
        epochs: 20,
        lr: 3e-3,
        batch_size: 32,
        seed: 7,
        val_fraction: 0.5,
        hidden: vec![64, 32],
        ..TrainConfig::default()
    };
    let shuffled = Trajectories::from_rows(trees.concat()).unwrap();
    let report = train(&shuffled, &cache, &cfg, &Device::Cpu, &out).unwrap();
    let traj = Trajectories::from_rows(truth.concat()).unwrap();
    let head = out.join("head.safetensors");
    let val = evaluate_checkpoint(&traj, &cache, &head, Split::Val).unwrap();
    let all = evaluate_checkpoint(&traj, &cache, &head, Split::All).unwrap();
    eprintln!("{}\n{}", val.render(), all.render());
    assert_eq!(val.split, "val");
    let val_names: HashSet<&str> = report.val_theorems.iter().map(String::as_str).collect();
    let theorem = |node: usize| traj.runs[traj.nodes[node].run].theorem.as_str();
    let val_decisions = traj
        .decisions()
        .iter()
        .filter(|d| val_names.contains(theorem(d.parent)))
        .count();
    assert_eq!(val.decisions, val_decisions);
    assert!(
        val.decisions >= 300 && val.decisions < all.decisions,
        "{val:?}"
    );
    assert!(
        (val.ebm_accuracy - val.random_baseline).abs() <= 0.05,
        "{val:?}"
    );
    // The same embeddings labelled as another model's: refused.
    let mut other = noise_cache(&trees, 13);
    other.set_identity(Some(model("b"))).unwrap();
    let err = evaluate_checkpoint(&traj, &other, &head, Split::Val)
        .unwrap_err()
        .to_string();
    assert!(err.contains("another model"), "{err}");
    // `ebm serve --head` on the encoder that made the embeddings: served; in another dtype:
    // a warning; on another model: refused, naming the train.json that says so.
    assert_eq!(check_head_encoder(&head, &model("a")).unwrap(), None);
    let bf16 = formats::identity::ModelIdentity {
        dtype: "bf16".into(),
        ..model("a")
    };
    let warning = check_head_encoder(&head, &bf16).unwrap().unwrap();
    assert!(
        warning.contains("f32") && warning.contains("bf16"),
        "{warning}"
    );
    let err = check_head_encoder(&head, &model("b"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("another model")
            && err.contains("train.json")
            && err.contains("encoder served"),
        "{err}"
    );
    // Without the run's train.json the split cannot be known: a clear error.
    std::fs::remove_file(out.join("train.json")).unwrap();
    let err = evaluate_checkpoint(&traj, &cache, &head, Split::Val)
        .unwrap_err()
        .to_string();
    assert!(err.contains("train.json"), "{err}");
}

#[test]
fn terminal_nodes_are_never_counted_as_missing_from_the_cache() {
    // `ebm embed` embeds non-terminal states only: a proof node without an embedding is no
    // gap, and saying so every round of `stepwise iterate` would be noise.
    let trees: Vec<Vec<NodeRow>> = traj_fixture::theorems("t", 6, 5);
    assert!(trees.concat().iter().any(|r| r.status.is_terminal()));
    let embeddable: Vec<Vec<NodeRow>> = trees
        .iter()
        .map(|t| {
            t.iter()
                .filter(|r| !r.status.is_terminal())
                .cloned()
                .collect()
        })
        .collect();
    let cache = traj_fixture::cache(&[&embeddable], 3);
    let dir = tempfile::tempdir().unwrap();
    let cfg = TrainConfig {
        epochs: 1,
        val_fraction: 0.5,
        ..TrainConfig::default()
    };
    let traj = Trajectories::from_rows(trees.concat()).unwrap();
    let report = train(&traj, &cache, &cfg, &Device::Cpu, &dir.path().join("run")).unwrap();
    assert_eq!(report.nodes_without_embedding, 0);
}

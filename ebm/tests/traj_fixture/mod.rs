//! Synthetic search trees for the trainer and evaluator tests, written through the search
//! crate's real trajectory writer, and an embedding cache whose proof-path states carry a
//! learnable signal (a shift along two embedding dimensions) under unit Gaussian noise.

use formats::NodeStatus;
use std::path::Path;

use ebm::embedding_cache::EmbeddingCache;
use formats::trajectory::{FailedRow, NodeRow, TrajectoryWriter};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

pub const DIM: usize = 16;
/// Shift of on-path states along dimensions 0 and 1.
const SIGNAL: f32 = 3.0;

pub fn row(
    theorem: &str,
    id: u32,
    parent: Option<u32>,
    depth: u32,
    on_path: bool,
    logprob: f64,
) -> NodeRow {
    NodeRow {
        theorem: theorem.to_string(),
        node_id: id,
        parent_id: parent,
        depth,
        tactic: parent.map(|p| format!("tac_{p}_{id}")),
        state: format!("{theorem} state {id}"),
        goal_count: 1,
        llm_logprob: logprob,
        cum_logprob: logprob * f64::from(depth),
        energy: None,
        score: 0.0,
        status: NodeStatus::Open,
        on_proof_path: on_path,
        label: i32::from(on_path),
        remaining_depth: None,
        created_ms: i64::from(id),
        run_id: 1,
        subgoal_of: None,
    }
}

/// One theorem's tree: a proof path of `path_len` tactics (when `proved`), each path node
/// with `branching` children, some off-path children with children of their own.
pub fn tree(
    theorem: &str,
    proved: bool,
    path_len: u32,
    branching: u32,
    rng: &mut StdRng,
) -> Vec<NodeRow> {
    let mut rows = vec![row(theorem, 0, None, 0, proved, 0.0)];
    let mut next = 1;
    let mut on_path_parent = 0;
    for depth in 1..=path_len {
        let chosen = rng.random_range(0..branching);
        let mut next_parent = None;
        for c in 0..branching {
            let id = next;
            next += 1;
            let on_path = proved && c == chosen;
            rows.push(row(
                theorem,
                id,
                Some(on_path_parent),
                depth,
                on_path,
                -rng.random_range(0.1..3.0),
            ));
            if on_path {
                next_parent = Some(id);
            } else if rng.random_bool(0.4) {
                for _ in 0..2 {
                    rows.push(row(
                        theorem,
                        next,
                        Some(id),
                        depth + 1,
                        false,
                        -rng.random_range(0.1..3.0),
                    ));
                    next += 1;
                }
            }
        }
        match next_parent {
            Some(p) => on_path_parent = p,
            None => break,
        }
    }
    let parents: std::collections::HashSet<u32> = rows.iter().filter_map(|r| r.parent_id).collect();
    for r in rows.iter_mut().filter(|r| parents.contains(&r.node_id)) {
        r.status = NodeStatus::Expanded;
    }
    if proved {
        // The last path node is the completed proof (empty goals text, shared by all proofs).
        let last = rows
            .iter_mut()
            .rev()
            .find(|r| r.on_proof_path)
            .expect("a path");
        last.state = String::new();
        last.goal_count = 0;
        last.status = NodeStatus::Proof;
        let len = rows.iter().filter(|r| r.on_proof_path).count() as u32;
        for r in rows.iter_mut().filter(|r| r.on_proof_path) {
            r.remaining_depth = Some(len - 1 - r.depth);
        }
    }
    rows
}

/// `n` theorems named `{prefix}{i}`, every fifth unproved.
pub fn theorems(prefix: &str, n: usize, seed: u64) -> Vec<Vec<NodeRow>> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|i| tree(&format!("{prefix}{i}"), i % 5 != 4, 3, 4, &mut rng))
        .collect()
}

/// Moves the proof-path labels to random other nodes of the same theorem (so they carry no
/// information about the embeddings).
pub fn shuffle_labels(trees: &mut [Vec<NodeRow>], seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    for rows in trees {
        let mut flags: Vec<bool> = rows.iter().map(|r| r.on_proof_path).collect();
        flags.shuffle(&mut rng);
        for (r, f) in rows.iter_mut().zip(flags) {
            r.on_proof_path = f;
            r.label = i32::from(f);
        }
    }
}

pub fn write(dir: &Path, trees: &[Vec<NodeRow>], failed: Vec<FailedRow>) {
    let mut writer = TrajectoryWriter::new(dir, 8, 100_000).unwrap();
    let mut failed = Some(failed);
    for rows in trees {
        writer
            .push(rows.clone(), failed.take().unwrap_or_default())
            .unwrap();
    }
    writer.flush().unwrap();
}

/// Embeddings keyed by state: noise, plus the signal for non-root proof-path states. Labels
/// come from `truth` (the unshuffled trees), so shuffled training data keeps true embeddings.
pub fn cache(truth: &[&[Vec<NodeRow>]], seed: u64) -> EmbeddingCache {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut cache = EmbeddingCache::new(DIM);
    for rows in truth.iter().flat_map(|t| t.iter()).flatten() {
        if cache.contains(&rows.state) {
            continue;
        }
        let mut e: Vec<f32> = (0..DIM).map(|_| normal(&mut rng)).collect();
        if rows.on_proof_path && rows.parent_id.is_some() {
            e[0] += SIGNAL;
            e[1] += SIGNAL;
        }
        cache.insert(rows.state.clone(), &e).unwrap();
    }
    cache
}

/// A standard normal draw (Box-Muller).
fn normal(rng: &mut StdRng) -> f32 {
    let u1: f64 = rng.random_range(f64::EPSILON..1.0);
    let u2: f64 = rng.random();
    ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
}

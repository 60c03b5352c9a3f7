//! `stepwise ebm train`: the energy head trained with InfoNCE on cached embeddings.
//!
//! Each group is one proof-path node and K negatives (see [`crate::train_sampler`]); the loss
//! is the cross-entropy of `softmax(-energy)` picking the positive. AdamW with linear warm-up
//! then cosine decay to zero, gradients clipped by their global norm (candle has no clipping).
//! Theorems, not nodes, are split into train and validation, so validation measures states of
//! proofs the head never saw.
//!
//! Determinism: one seeded RNG drives the split, the initial weights (PyTorch's `nn.Linear`
//! init, written into the VarMap before the head is built) and every sample. Candle's CPU
//! dropout draws from an unseeded RNG, so `dropout` defaults to 0 here; with dropout > 0 a run
//! is not bit-for-bit repeatable, nor is one on CUDA (its reductions are not ordered).

use std::collections::HashSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarBuilder, VarMap};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::embedding_cache::EmbeddingCache;
use crate::energy_head::{config_path, save_head, EnergyHead, HeadConfig};
use crate::error::EbmError;
use crate::eval::state_energies;
use crate::train_sampler::{Example, NegativesFrom, Sampler, TierCounts, TierPlan};
use crate::trajectories::Trajectories;
use formats::identity::{EnergyScale, ModelIdentity};

/// Energies whose standard deviation falls below this have collapsed to a constant.
const COLLAPSE_STD: f64 = 1e-3;
/// Rows per forward pass when scoring validation groups.
const EVAL_ROWS: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Ebm(#[from] EbmError),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("nothing to train on: {0}")]
    NoData(String),
    #[error("training options: {0}")]
    Config(String),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> TrainError + '_ {
    move |source| TrainError::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrainConfig {
    pub negatives: usize,
    /// Which off-path nodes may be negatives (`--negatives-from expanded|all`).
    pub negatives_from: NegativesFrom,
    pub hard_ratio: f64,
    pub medium_ratio: f64,
    pub epochs: usize,
    pub lr: f64,
    pub weight_decay: f64,
    pub batch_size: usize,
    pub seed: u64,
    pub val_fraction: f64,
    /// Share of all steps spent warming the learning rate up linearly.
    pub warmup_fraction: f64,
    pub max_grad_norm: f64,
    /// Hidden widths between the embedding and the single energy.
    pub hidden: Vec<usize>,
    pub dropout: f32,
    pub spectral_norm: bool,
    /// Divide energies by a learned temperature τ = exp(log τ) inside InfoNCE only (BurnQED's
    /// `temperature_scale`, log τ clamped to [-5, 2], starting at τ = 1). Off by default.
    pub learnable_temperature: bool,
    /// Weight of an auxiliary loss on positives: MSE between the raw energy and the remaining
    /// depth to the proof's end, divided by the batch's largest (BurnQED's
    /// `depth_regression_loss`, weight 0.3 there). 0 = off, the default.
    pub depth_loss_weight: f64,
    /// Train on labels permuted among siblings with this seed
    /// ([`Trajectories::shuffle_labels`]): the control a learned head is measured against.
    pub shuffle_labels: Option<u64>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            negatives: 7,
            negatives_from: NegativesFrom::All,
            hard_ratio: 0.5,
            medium_ratio: 0.3,
            epochs: 10,
            lr: 1e-3,
            weight_decay: 0.01,
            batch_size: 64,
            seed: 0,
            val_fraction: 0.1,
            warmup_fraction: 0.05,
            max_grad_norm: 1.0,
            hidden: vec![2048, 1024, 512],
            dropout: 0.0,
            spectral_norm: false,
            learnable_temperature: false,
            depth_loss_weight: 0.0,
            shuffle_labels: None,
        }
    }
}

impl TrainConfig {
    pub fn validate(&self) -> Result<(), TrainError> {
        let bad = |m: String| Err(TrainError::Config(m));
        let ratio = |r: f64| (0.0..=1.0).contains(&r);
        if !ratio(self.hard_ratio)
            || !ratio(self.medium_ratio)
            || self.hard_ratio + self.medium_ratio > 1.0
        {
            return bad(format!(
                "hard ratio {} and medium ratio {} must be in [0, 1] and sum to at most 1",
                self.hard_ratio, self.medium_ratio
            ));
        }
        if self.negatives == 0 || self.epochs == 0 || self.batch_size == 0 {
            return bad("negatives, epochs and batch size must be at least 1".into());
        }
        if self.depth_loss_weight.is_nan() || self.depth_loss_weight < 0.0 {
            return bad("depth loss weight must be >= 0".into());
        }
        if !ratio(self.val_fraction) || !ratio(self.warmup_fraction) {
            return bad("val fraction and warm-up fraction must be in [0, 1]".into());
        }
        if [self.lr, self.max_grad_norm]
            .iter()
            .any(|v| v.is_nan() || *v <= 0.0)
        {
            return bad("learning rate and max grad norm must be > 0".into());
        }
        Ok(())
    }
}

/// One line of `metrics.jsonl`. Energy statistics are over the evaluation groups
/// (validation theorems, or training ones when there is no validation split).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EpochMetrics {
    pub epoch: usize,
    pub steps: usize,
    pub lr: f64,
    pub train_loss: f64,
    pub eval_split: &'static str,
    pub eval_loss: f64,
    /// Mean negative energy minus mean positive energy (positive = right way round).
    pub energy_gap: f64,
    pub pos_energy_mean: f64,
    pub neg_energy_mean: f64,
    /// Share of groups whose positive has the strictly lowest energy.
    pub rank1_accuracy: f64,
    pub energy_std: f64,
    pub grad_norm_mean: f64,
    pub clipped_steps: usize,
    pub tiers: TierCounts,
    /// The learned InfoNCE temperature at the epoch's end (with `learnable_temperature`).
    pub temperature: Option<f64>,
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TrainReport {
    pub config: TrainConfig,
    pub embedding_dim: usize,
    /// The model of the embedding cache trained on; `ebm eval` refuses a cache of another.
    pub embedding_identity: Option<ModelIdentity>,
    pub train_theorems: Vec<String>,
    pub val_theorems: Vec<String>,
    pub train_positives: usize,
    pub eval_groups: usize,
    /// Non-terminal nodes skipped because their state is not in the embedding cache
    /// (terminal ones have no goals and are never embedded).
    pub nodes_without_embedding: usize,
    /// The epoch whose checkpoint became `head.safetensors` (lowest evaluation loss).
    pub best_epoch: usize,
    pub head: PathBuf,
    /// `head.safetensors`' energies over the evaluation split's states; null when they
    /// collapsed to a constant.
    pub energy_scale: Option<RecordedEnergyScale>,
    /// With `shuffle_labels`: nodes whose `on_proof_path` the shuffle changed.
    pub labels_moved: Option<usize>,
    pub epochs: Vec<EpochMetrics>,
}

/// The scale `ebm serve` reports on `/health` for a head and the search standardises its
/// energies with (`search.ebm_normalize`): the mean and standard deviation of the best head's
/// energies over every embedded non-terminal node of the validation theorems, since the
/// search scores every new node (the InfoNCE groups draw positives and tiers by ratio, so
/// their energies are not what the search sees).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedEnergyScale {
    #[serde(flatten)]
    pub scale: EnergyScale,
    /// `val`, or `train` when the validation theorems have no embedded node.
    pub split: String,
    /// Nodes the figures are over.
    pub nodes: usize,
    /// sha256 of the weights they describe: a checkpoint beside the same `train.json` is
    /// another head, whose energies these are not.
    pub head_sha256: String,
}

/// The `train.json` that `ebm train` wrote beside the head (`OUT/head.safetensors`) or one
/// level up (`OUT/checkpoints/epoch-N.safetensors`), if any.
pub(crate) fn train_json(head: &Path) -> Result<Option<(PathBuf, serde_json::Value)>, EbmError> {
    let dir = head.parent().unwrap_or(Path::new("."));
    let Some(path) = [dir.join("train.json"), dir.join("../train.json")]
        .into_iter()
        .find(|p| p.exists())
    else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(&path).map_err(|e| EbmError::io(&path, e))?;
    let json = serde_json::from_str(&text).map_err(|error| EbmError::Json {
        path: path.clone(),
        error,
    })?;
    Ok(Some((path, json)))
}

/// The model whose embeddings trained `head` and the `train.json` that says so; None when
/// no run recorded one.
pub fn trained_identity(head: &Path) -> Result<Option<(PathBuf, ModelIdentity)>, EbmError> {
    let Some((path, json)) = train_json(head)? else {
        return Ok(None);
    };
    let identity: Option<ModelIdentity> =
        serde_json::from_value(json["embedding_identity"].clone()).unwrap_or(None);
    Ok(identity.map(|i| (path, i)))
}

/// The energy scale `ebm train` recorded for the weights `head` (whose sha256 is `sha256`),
/// from the `train.json` beside it; None when it recorded none, or recorded it for other
/// weights (a checkpoint is served, not the best head).
pub fn recorded_energy_scale(head: &Path, sha256: &str) -> Result<Option<EnergyScale>, EbmError> {
    let Some((path, json)) = train_json(head)? else {
        return Ok(None);
    };
    let recorded = match json.get("energy_scale") {
        None | Some(serde_json::Value::Null) => return Ok(None),
        Some(value) => serde_json::from_value::<RecordedEnergyScale>(value.clone())
            .map_err(|error| EbmError::Json { path, error })?,
    };
    Ok((recorded.head_sha256 == sha256).then_some(recorded.scale))
}

/// Refuses to serve `head` on an encoder other than the one whose embeddings trained it
/// (config, tokenizer files, pooling); nothing recorded, nothing to check. Another dtype
/// (trained on bf16 embeddings from a GPU, served in f32 on a CPU) is the same model with
/// rounding differences: a warning, returned for the caller to log.
pub fn check_head_encoder(
    head: &Path,
    encoder: &ModelIdentity,
) -> Result<Option<String>, EbmError> {
    let Some((path, trained)) = trained_identity(head)? else {
        return Ok(None);
    };
    let same_model = trained.config_sha256 == encoder.config_sha256
        && trained.tokenizer_sha256 == encoder.tokenizer_sha256
        && trained.pooling == encoder.pooling;
    if !same_model {
        return Err(EbmError::OtherModel {
            recorded_in: path,
            trained: Box::new(trained),
            given: "the encoder served",
            other: Box::new(encoder.clone()),
        });
    }
    Ok((trained.dtype != encoder.dtype).then(|| {
        format!(
            "the head was trained on {} embeddings and is served in {}: energies may differ by rounding",
            trained.dtype, encoder.dtype
        )
    }))
}

/// Theorem names of the validation split: a seeded shuffle, stratified so proved and
/// unproved theorems are split in the same proportion.
pub fn split_theorems(traj: &Trajectories, val_fraction: f64, seed: u64) -> HashSet<String> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut proved: Vec<String> = Vec::new();
    let mut unproved: Vec<String> = Vec::new();
    for name in traj.theorem_names() {
        let is_proved = traj
            .runs
            .iter()
            .any(|r| r.theorem == name && r.proved(&traj.nodes));
        if is_proved {
            proved.push(name.to_string());
        } else {
            unproved.push(name.to_string());
        }
    }
    let mut val = HashSet::new();
    for mut names in [proved, unproved] {
        names.sort();
        names.shuffle(&mut rng);
        let n = ((names.len() as f64) * val_fraction).round() as usize;
        // Keep at least one theorem for training.
        let n = n.min(names.len().saturating_sub(1));
        val.extend(names.into_iter().take(n));
    }
    val
}

/// Learning rate at `step` (0-based): linear warm-up, then cosine decay to 0.
pub fn lr_at(base: f64, step: usize, warmup: usize, total: usize) -> f64 {
    if step < warmup {
        return base * (step + 1) as f64 / warmup as f64;
    }
    let progress = (step - warmup) as f64 / (total - warmup).max(1) as f64;
    base * 0.5 * (1.0 + (std::f64::consts::PI * progress.min(1.0)).cos())
}

/// The head's variables in name order (HashMap order would make float sums order-dependent).
fn sorted_vars(varmap: &VarMap) -> Vec<(String, Var)> {
    let data = varmap.data().lock().unwrap_or_else(|p| p.into_inner());
    let mut vars: Vec<(String, Var)> = data.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    vars
}

/// Writes seeded `nn.Linear` initial weights (uniform in +-1/sqrt(fan_in)) into `varmap`
/// under the names [`EnergyHead::new`] will ask for, so building the head picks them up.
fn seed_weights(
    varmap: &VarMap,
    widths: &[usize],
    rng: &mut StdRng,
    device: &Device,
) -> Result<(), TrainError> {
    let mut data = varmap.data().lock().unwrap_or_else(|p| p.into_inner());
    for (i, pair) in widths.windows(2).enumerate() {
        let (fan_in, fan_out) = (pair[0], pair[1]);
        let bound = 1.0 / (fan_in as f32).sqrt();
        let mut uniform =
            |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random_range(-bound..bound)).collect() };
        let weight = Tensor::from_vec(uniform(fan_out * fan_in), (fan_out, fan_in), device)?;
        let bias = Tensor::from_vec(uniform(fan_out), fan_out, device)?;
        data.insert(format!("layers.{i}.weight"), Var::from_tensor(&weight)?);
        data.insert(format!("layers.{i}.bias"), Var::from_tensor(&bias)?);
    }
    Ok(())
}

/// Embeddings of the groups' nodes, positive first: `[groups * (K + 1), dim]`.
fn group_tensor(
    examples: &[Example],
    traj: &Trajectories,
    cache: &EmbeddingCache,
    device: &Device,
) -> Result<Tensor, TrainError> {
    let dim = cache.dim();
    let mut data = Vec::new();
    for ex in examples {
        for &node in std::iter::once(&ex.positive).chain(&ex.negatives) {
            let embedding = cache
                .get(&traj.nodes[node].state)
                .expect("sampler only draws embedded nodes");
            data.extend_from_slice(embedding);
        }
    }
    let rows = data.len() / dim;
    Ok(Tensor::from_vec(data, (rows, dim), device)?)
}

/// BurnQED's depth regression on the positives (column 0 of `energies`): MSE between the raw
/// energy and remaining depth / the batch's largest, over positives whose depth is known.
fn depth_loss(
    energies: &Tensor,
    batch: &[Example],
    traj: &Trajectories,
) -> Result<Option<Tensor>, TrainError> {
    let depths: Vec<Option<u32>> = batch
        .iter()
        .map(|ex| traj.nodes[ex.positive].remaining_depth)
        .collect();
    let known: Vec<usize> = (0..depths.len()).filter(|&i| depths[i].is_some()).collect();
    if known.is_empty() {
        return Ok(None);
    }
    let max = depths.iter().flatten().copied().max().unwrap_or(1).max(1) as f32;
    let targets: Vec<f32> = known
        .iter()
        .map(|&i| depths[i].unwrap_or(0) as f32 / max)
        .collect();
    let device = energies.device();
    let index = Tensor::from_vec(
        known.iter().map(|&i| i as u32).collect::<Vec<_>>(),
        known.len(),
        device,
    )?;
    let positives = energies
        .narrow(1, 0, 1)?
        .squeeze(1)?
        .contiguous()?
        .index_select(&index, 0)?;
    let targets = Tensor::from_vec(targets, known.len(), device)?;
    Ok(Some((positives - targets)?.sqr()?.mean_all()?))
}

/// InfoNCE loss of energies `[groups, K + 1]` with the positive in column 0.
fn info_nce(energies: &Tensor) -> Result<Tensor, TrainError> {
    let groups = energies.dim(0)?;
    let targets = Tensor::zeros(groups, DType::U32, energies.device())?;
    Ok(candle_nn::loss::cross_entropy(&energies.neg()?, &targets)?)
}

/// Scales the gradients in place so their global norm is at most `max_norm`; the norm before.
fn clip_gradients(
    grads: &mut candle_core::backprop::GradStore,
    vars: &[(String, Var)],
    max_norm: f64,
) -> Result<f64, TrainError> {
    let mut sum_sq = 0f64;
    for (_, var) in vars {
        if let Some(g) = grads.get(var.as_tensor()) {
            sum_sq += f64::from(g.sqr()?.sum_all()?.to_scalar::<f32>()?);
        }
    }
    let norm = sum_sq.sqrt();
    if norm > max_norm {
        let scale = max_norm / (norm + 1e-6);
        for (_, var) in vars {
            if let Some(g) = grads.get(var.as_tensor()) {
                let scaled = (g * scale)?;
                grads.insert(var.as_tensor(), scaled);
            }
        }
    }
    Ok(norm)
}

struct EvalStats {
    loss: f64,
    pos_mean: f64,
    neg_mean: f64,
    rank1: f64,
    std: f64,
}

fn evaluate_groups(
    head: &EnergyHead,
    examples: &[Example],
    traj: &Trajectories,
    cache: &EmbeddingCache,
    device: &Device,
) -> Result<EvalStats, TrainError> {
    let width = examples[0].negatives.len() + 1;
    let per_chunk = (EVAL_ROWS / width).max(1);
    let mut all: Vec<f32> = Vec::new();
    for chunk in examples.chunks(per_chunk) {
        let x = group_tensor(chunk, traj, cache, device)?;
        all.extend(head.forward(&x, false)?.to_vec1::<f32>()?);
    }
    let energies = Tensor::from_vec(all.clone(), (examples.len(), width), device)?;
    let loss = f64::from(info_nce(&energies)?.to_scalar::<f32>()?);
    let (mut pos_sum, mut neg_sum, mut correct) = (0f64, 0f64, 0usize);
    for group in all.chunks(width) {
        pos_sum += f64::from(group[0]);
        neg_sum += group[1..].iter().map(|&e| f64::from(e)).sum::<f64>();
        if group[1..].iter().all(|&e| group[0] < e) {
            correct += 1;
        }
    }
    let n = all.len() as f64;
    let mean = all.iter().map(|&e| f64::from(e)).sum::<f64>() / n;
    let var = all
        .iter()
        .map(|&e| (f64::from(e) - mean).powi(2))
        .sum::<f64>()
        / n;
    Ok(EvalStats {
        loss,
        pos_mean: pos_sum / examples.len() as f64,
        neg_mean: neg_sum / (examples.len() * (width - 1)) as f64,
        rank1: correct as f64 / examples.len() as f64,
        std: var.sqrt(),
    })
}

/// Trains a head and writes into `out`: `head.safetensors` + `head.json` (the best epoch),
/// `checkpoints/epoch-NNN.{safetensors,json}`, `metrics.jsonl` and `train.json`.
pub fn train(
    traj: &Trajectories,
    cache: &EmbeddingCache,
    cfg: &TrainConfig,
    device: &Device,
    out: &Path,
) -> Result<TrainReport, TrainError> {
    cfg.validate()?;
    // The shuffle works on a copy (the caller's trajectories stay true): twice the node
    // memory, for the control run only.
    let shuffled;
    let (traj, labels_moved) = match cfg.shuffle_labels {
        Some(seed) => {
            let mut copy = traj.clone();
            let moved = copy.shuffle_labels(seed);
            tracing::info!(
                seed,
                moved,
                "labels shuffled among siblings: this head is the control"
            );
            shuffled = copy;
            (&shuffled, Some(moved))
        }
        None => (traj, None),
    };
    let mut rng = StdRng::seed_from_u64(cfg.seed);
    let val_names = split_theorems(traj, cfg.val_fraction, cfg.seed);
    let in_val = |node: usize| val_names.contains(&traj.runs[traj.nodes[node].run].theorem);
    let embedded = |node: usize| cache.contains(&traj.nodes[node].state);
    // Terminal nodes (closed goals) are never embedded: only the others can be missing.
    let nodes_without_embedding = (0..traj.nodes.len())
        .filter(|&i| !traj.nodes[i].status.is_terminal() && !embedded(i))
        .count();
    if nodes_without_embedding > 0 {
        tracing::warn!(
            nodes_without_embedding,
            "some states are not in the embedding cache; they are skipped"
        );
    }
    let plan = TierPlan {
        negatives: cfg.negatives,
        hard_ratio: cfg.hard_ratio,
        medium_ratio: cfg.medium_ratio,
        negatives_from: cfg.negatives_from,
    };
    let train_sampler = Sampler::new(traj, plan, |i| embedded(i) && !in_val(i));
    let val_sampler = Sampler::new(traj, plan, |i| embedded(i) && in_val(i));
    if train_sampler.positives().is_empty() {
        return Err(TrainError::NoData(
            "no embedded proof-path node (other than a root) in the training theorems".into(),
        ));
    }
    // Validation groups are drawn once, from their own stream, so epochs compare like for like.
    let mut val_rng = StdRng::seed_from_u64(cfg.seed ^ 0x5eed_0f0a_7a11);
    let mut ignored = TierCounts::default();
    let (eval_split, eval_examples) = if val_sampler.positives().is_empty() {
        ("train", train_sampler.epoch(&mut val_rng, &mut ignored))
    } else {
        ("val", val_sampler.epoch(&mut val_rng, &mut ignored))
    };
    if eval_examples.is_empty() {
        return Err(TrainError::NoData("no negatives for any positive".into()));
    }

    let mut widths = vec![cache.dim()];
    widths.extend(&cfg.hidden);
    widths.push(1);
    let head_cfg = HeadConfig {
        widths: widths.clone(),
        dropout: cfg.dropout,
        spectral_norm: cfg.spectral_norm,
        ..HeadConfig::default()
    };
    head_cfg.validate()?;
    let varmap = VarMap::new();
    seed_weights(&varmap, &widths, &mut rng, device)?;
    let head = EnergyHead::new(
        &head_cfg,
        VarBuilder::from_varmap(&varmap, DType::F32, device),
    )?;
    let vars = sorted_vars(&varmap);
    // Training-only: not part of the head (the served energy is the raw one).
    let log_tau = Var::zeros((), DType::F32, device)?;
    let mut trained: Vec<Var> = vars.iter().map(|(_, v)| v.clone()).collect();
    if cfg.learnable_temperature {
        trained.push(log_tau.clone());
    }
    let mut opt = AdamW::new(
        trained,
        ParamsAdamW {
            lr: cfg.lr,
            weight_decay: cfg.weight_decay,
            ..ParamsAdamW::default()
        },
    )?;

    let checkpoints = out.join("checkpoints");
    std::fs::create_dir_all(&checkpoints).map_err(io_err(&checkpoints))?;
    let metrics_path = out.join("metrics.jsonl");
    let mut metrics_file = std::fs::File::create(&metrics_path).map_err(io_err(&metrics_path))?;

    let steps_per_epoch = train_sampler.positives().len().div_ceil(cfg.batch_size);
    let total_steps = steps_per_epoch * cfg.epochs;
    let warmup = ((total_steps as f64) * cfg.warmup_fraction).ceil() as usize;
    let bar = indicatif::ProgressBar::new(total_steps as u64).with_style(
        indicatif::ProgressStyle::with_template(
            "train {bar:30} {pos}/{len} steps  epoch {msg}  eta {eta}",
        )
        .expect("valid template"),
    );

    let mut step = 0;
    let mut epochs = Vec::with_capacity(cfg.epochs);
    let mut best: Option<(f64, usize)> = None;
    for epoch in 1..=cfg.epochs {
        bar.set_message(format!("{epoch}/{}", cfg.epochs));
        let mut tiers = TierCounts::default();
        let examples = train_sampler.epoch(&mut rng, &mut tiers);
        let (mut loss_sum, mut grad_sum, mut clipped, mut batches) = (0f64, 0f64, 0usize, 0usize);
        let mut lr = cfg.lr;
        for batch in examples.chunks(cfg.batch_size) {
            lr = lr_at(cfg.lr, step, warmup, total_steps);
            opt.set_learning_rate(lr);
            let x = group_tensor(batch, traj, cache, device)?;
            let energies = head
                .forward(&x, true)?
                .reshape((batch.len(), cfg.negatives + 1))?;
            let scaled = if cfg.learnable_temperature {
                let tau = log_tau.as_tensor().clamp(-5f32, 2f32)?.exp()?;
                energies.broadcast_div(&tau)?
            } else {
                energies.clone()
            };
            let mut loss = info_nce(&scaled)?;
            if cfg.depth_loss_weight > 0.0 {
                if let Some(depth) = depth_loss(&energies, batch, traj)? {
                    loss = (loss + (depth * cfg.depth_loss_weight)?)?;
                }
            }
            let mut grads = loss.backward()?;
            let norm = clip_gradients(&mut grads, &vars, cfg.max_grad_norm)?;
            opt.step(&grads)?;
            loss_sum += f64::from(loss.to_scalar::<f32>()?);
            grad_sum += norm;
            clipped += usize::from(norm > cfg.max_grad_norm);
            batches += 1;
            step += 1;
            bar.inc(1);
        }
        let stats = evaluate_groups(&head, &eval_examples, traj, cache, device)?;
        let gap = stats.neg_mean - stats.pos_mean;
        let mut warnings = Vec::new();
        if stats.std < COLLAPSE_STD {
            warnings.push(format!(
                "energies collapsed: std {:.2e} < {COLLAPSE_STD:.0e}",
                stats.std
            ));
        }
        if gap < 0.0 {
            warnings.push(format!(
                "inverted gap: positives score higher energy than negatives ({gap:.4})"
            ));
        }
        for w in &warnings {
            tracing::warn!(epoch, "{w}");
        }
        let metrics = EpochMetrics {
            epoch,
            steps: batches,
            lr,
            train_loss: loss_sum / batches.max(1) as f64,
            eval_split,
            eval_loss: stats.loss,
            energy_gap: gap,
            pos_energy_mean: stats.pos_mean,
            neg_energy_mean: stats.neg_mean,
            rank1_accuracy: stats.rank1,
            energy_std: stats.std,
            grad_norm_mean: grad_sum / batches.max(1) as f64,
            clipped_steps: clipped,
            tiers,
            temperature: if cfg.learnable_temperature {
                Some(f64::from(
                    log_tau
                        .as_tensor()
                        .clamp(-5f32, 2f32)?
                        .exp()?
                        .to_scalar::<f32>()?,
                ))
            } else {
                None
            },
            warnings,
        };
        let line = serde_json::to_string(&metrics).expect("metrics serialise");
        writeln!(metrics_file, "{line}").map_err(io_err(&metrics_path))?;
        metrics_file.flush().map_err(io_err(&metrics_path))?;
        tracing::info!(
            epoch,
            train_loss = metrics.train_loss,
            eval_loss = metrics.eval_loss,
            rank1 = metrics.rank1_accuracy,
            gap = metrics.energy_gap,
            "epoch done"
        );
        save_head(&varmap, &head_cfg, &checkpoint_path(&checkpoints, epoch))?;
        if best.is_none_or(|(loss, _)| stats.loss < loss) {
            best = Some((stats.loss, epoch));
        }
        epochs.push(metrics);
    }
    bar.finish_and_clear();

    let best_epoch = best.map_or(1, |(_, e)| e);
    let head_path = out.join("head.safetensors");
    let from = checkpoint_path(&checkpoints, best_epoch);
    for (src, dst) in [
        (from.clone(), head_path.clone()),
        (config_path(&from), config_path(&head_path)),
    ] {
        std::fs::copy(&src, &dst).map_err(io_err(&dst))?;
    }
    let energy_scale = energy_scale(&head_path, traj, cache, in_val, device)?;
    let mut train_theorems: Vec<String> = traj
        .theorem_names()
        .into_iter()
        .filter(|t| !val_names.contains(*t))
        .map(str::to_string)
        .collect();
    train_theorems.sort();
    let mut val_theorems: Vec<String> = val_names.into_iter().collect();
    val_theorems.sort();
    let report = TrainReport {
        config: cfg.clone(),
        embedding_dim: cache.dim(),
        embedding_identity: cache.identity().cloned(),
        train_theorems,
        val_theorems,
        train_positives: train_sampler.positives().len(),
        eval_groups: eval_examples.len(),
        nodes_without_embedding,
        best_epoch,
        head: head_path,
        energy_scale,
        labels_moved,
        epochs,
    };
    let summary_path = out.join("train.json");
    let json = serde_json::to_string_pretty(&report).expect("report serialises");
    std::fs::write(&summary_path, json + "\n").map_err(io_err(&summary_path))?;
    Ok(report)
}

/// The [`RecordedEnergyScale`] of the head at `head_path`: over the validation split's
/// embedded non-terminal nodes (`in_val`), or the training split's when it has none. None,
/// with a warning, when the energies collapsed: standardising them would let float noise
/// steer the search.
fn energy_scale(
    head_path: &Path,
    traj: &Trajectories,
    cache: &EmbeddingCache,
    in_val: impl Fn(usize) -> bool,
    device: &Device,
) -> Result<Option<RecordedEnergyScale>, TrainError> {
    let head = EnergyHead::load(head_path, device)?;
    let scored = |node: usize| {
        let n = &traj.nodes[node];
        !n.status.is_terminal() && cache.contains(&n.state)
    };
    let val: Vec<usize> = (0..traj.nodes.len())
        .filter(|&i| scored(i) && in_val(i))
        .collect();
    let (split, nodes) = if val.is_empty() {
        let train = (0..traj.nodes.len()).filter(|&i| scored(i)).collect();
        ("train", train)
    } else {
        ("val", val)
    };
    let states: Vec<&str> = nodes
        .iter()
        .map(|&i| traj.nodes[i].state.as_str())
        .collect();
    let by_state = state_energies(&head, cache, &states, device)?;
    let energies: Vec<f64> = states.iter().map(|s| f64::from(by_state[*s])).collect();
    if energies.is_empty() {
        return Ok(None);
    }
    let n = energies.len() as f64;
    let mean = energies.iter().sum::<f64>() / n;
    let std = (energies.iter().map(|e| (e - mean).powi(2)).sum::<f64>() / n).sqrt();
    let scale = EnergyScale { mean, std };
    if !scale.is_usable() || std < COLLAPSE_STD {
        tracing::warn!(
            mean,
            std,
            "the head's energies collapsed: no energy scale recorded, so searches rank by its \
             raw energies"
        );
        return Ok(None);
    }
    Ok(Some(RecordedEnergyScale {
        scale,
        split: split.to_string(),
        nodes: energies.len(),
        head_sha256: head
            .weights_sha256()
            .expect("a loaded head has its hash")
            .to_string(),
    }))
}

fn checkpoint_path(dir: &Path, epoch: usize) -> PathBuf {
    dir.join(format!("epoch-{epoch:03}.safetensors"))
}

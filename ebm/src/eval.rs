//! `stepwise ebm eval`: does the head pick the on-path child at each proof-path decision?
//!
//! A decision is an on-path parent with two or more children. The head is right when the
//! on-path child has the lowest energy among the siblings; the LLM is right when it has the
//! highest tactic log-prob. Ties count as a random pick among the tied (credit 1/ties), so a
//! constant head scores exactly the random baseline, mean(1/siblings). Terminal children are
//! not part of a decision (see `Trajectories::decisions`): the search never scores them.
//!
//! `--split val` keeps only the validation theorems of the run that trained the head (its
//! `train.json`), so the accuracy is on theorems the head never saw.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use candle_core::{Device, Tensor};
use serde::Serialize;

use crate::embedding_cache::EmbeddingCache;
use crate::energy_head::EnergyHead;
use crate::error::{EbmError, Result};
use crate::train::{train_json, trained_identity};
use crate::trajectories::Trajectories;

/// States per forward pass.
const BATCH: usize = 1024;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DepthRow {
    /// Depth of the deciding parent (0 = the theorem's root).
    pub depth: u32,
    pub decisions: usize,
    pub ebm_accuracy: f64,
    pub llm_accuracy: f64,
    pub random_baseline: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvalReport {
    /// "all", or "val"/"train": the theorems of that side of the head's training split.
    pub split: String,
    pub decisions: usize,
    /// Decisions left out because a child's state has no embedding.
    pub decisions_skipped: usize,
    pub ebm_accuracy: f64,
    pub llm_accuracy: f64,
    pub random_baseline: f64,
    pub mean_siblings: f64,
    pub by_depth: Vec<DepthRow>,
    pub nodes_scored: usize,
    pub energy_on_path_mean: Option<f64>,
    pub energy_off_path_mean: Option<f64>,
    /// Off-path children at decisions: the negatives the search actually faced.
    pub energy_sibling_mean: Option<f64>,
}

/// Energies of distinct states, one forward pass per [`BATCH`] states.
pub fn state_energies(
    head: &EnergyHead,
    cache: &EmbeddingCache,
    states: &[&str],
    device: &Device,
) -> Result<HashMap<String, f32>> {
    let mut energies = HashMap::with_capacity(states.len());
    let mut distinct: Vec<&str> = states
        .iter()
        .copied()
        .filter(|s| cache.contains(s))
        .collect();
    distinct.sort_unstable();
    distinct.dedup();
    for chunk in distinct.chunks(BATCH) {
        let mut data = Vec::with_capacity(chunk.len() * cache.dim());
        for state in chunk {
            data.extend_from_slice(cache.get(state).expect("filtered to cached states"));
        }
        let x = Tensor::from_vec(data, (chunk.len(), cache.dim()), device)?;
        let e = head.forward(&x, false)?.to_vec1::<f32>()?;
        energies.extend(chunk.iter().map(|s| s.to_string()).zip(e));
    }
    Ok(energies)
}

/// Credit for `chosen`: 1/ties if its value is the best (lowest or highest), else 0.
fn credit(values: &[f64], chosen: usize, lower_is_better: bool) -> f64 {
    let key = |v: f64| if lower_is_better { v } else { -v };
    let best = values.iter().map(|&v| key(v)).fold(f64::INFINITY, f64::min);
    if key(values[chosen]) > best {
        return 0.0;
    }
    1.0 / values.iter().filter(|&&v| key(v) == best).count() as f64
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / n as f64)
}

#[derive(Default)]
struct Tally {
    n: usize,
    ebm: f64,
    llm: f64,
    random: f64,
}

impl Tally {
    fn add(&mut self, ebm: f64, llm: f64, siblings: usize) {
        self.n += 1;
        self.ebm += ebm;
        self.llm += llm;
        self.random += 1.0 / siblings as f64;
    }
    fn share(&self, x: f64) -> f64 {
        if self.n == 0 {
            0.0
        } else {
            x / self.n as f64
        }
    }
}

/// Which theorems `ebm eval` looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    All,
    /// The validation theorems of the head's training run.
    Val,
    /// Its training theorems (to compare with `Val`: a gap is overfitting).
    Train,
}

impl std::str::FromStr for Split {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "all" => Ok(Split::All),
            "val" => Ok(Split::Val),
            "train" => Ok(Split::Train),
            other => Err(format!("{other:?}: expected \"all\", \"val\" or \"train\"")),
        }
    }
}

impl Split {
    fn name(self) -> &'static str {
        match self {
            Split::All => "all",
            Split::Val => "val",
            Split::Train => "train",
        }
    }
}

/// The theorem names of `split`, from the head's `train.json`.
pub fn split_theorems(head: &Path, split: Split) -> Result<Option<HashSet<String>>> {
    let key = match split {
        Split::All => return Ok(None),
        Split::Val => "val_theorems",
        Split::Train => "train_theorems",
    };
    let (path, json) = train_json(head)?.ok_or_else(|| {
        EbmError::Split(format!(
            "no train.json beside {} (or one level up): --split {} needs the run that trained the head",
            head.display(),
            split.name()
        ))
    })?;
    let names = json[key]
        .as_array()
        .ok_or_else(|| EbmError::Split(format!("{}: no {key:?} list", path.display())))?;
    Ok(Some(
        names
            .iter()
            .filter_map(|n| n.as_str().map(str::to_string))
            .collect(),
    ))
}

/// Refuses a cache made by another model than the one the head was trained on (when both
/// are recorded).
fn check_identity(head: &Path, cache: &EmbeddingCache) -> Result<()> {
    match (trained_identity(head)?, cache.identity()) {
        (Some((path, trained)), Some(given)) if trained != *given => Err(EbmError::OtherModel {
            recorded_in: path,
            trained: Box::new(trained),
            given: "this cache's",
            other: Box::new(given.clone()),
        }),
        _ => Ok(()),
    }
}

pub fn evaluate(
    traj: &Trajectories,
    cache: &EmbeddingCache,
    head: &EnergyHead,
    device: &Device,
) -> Result<EvalReport> {
    evaluate_theorems(traj, cache, head, device, None, Split::All)
}

/// `evaluate` on the decisions of `theorems` only (all when None).
fn evaluate_theorems(
    traj: &Trajectories,
    cache: &EmbeddingCache,
    head: &EnergyHead,
    device: &Device,
    theorems: Option<&HashSet<String>>,
    split: Split,
) -> Result<EvalReport> {
    let included =
        |node: usize| theorems.is_none_or(|t| t.contains(&traj.runs[traj.nodes[node].run].theorem));
    let states: Vec<&str> = traj.nodes.iter().map(|n| n.state.as_str()).collect();
    let energies = state_energies(head, cache, &states, device)?;
    let energy = |node: usize| energies.get(&traj.nodes[node].state).map(|&e| f64::from(e));

    let mut total = Tally::default();
    let mut by_depth: BTreeMap<u32, Tally> = BTreeMap::new();
    let mut skipped = 0;
    let mut siblings_seen = 0usize;
    let mut sibling_energies = Vec::new();
    for decision in traj.decisions().into_iter().filter(|d| included(d.parent)) {
        let Some(ebm_values) = decision
            .children
            .iter()
            .map(|&c| energy(c))
            .collect::<Option<Vec<f64>>>()
        else {
            skipped += 1;
            continue;
        };
        let llm_values: Vec<f64> = decision
            .children
            .iter()
            .map(|&c| traj.nodes[c].llm_logprob)
            .collect();
        let chosen = decision
            .children
            .iter()
            .position(|&c| c == decision.chosen)
            .expect("the chosen child is a child");
        let ebm = credit(&ebm_values, chosen, true);
        let llm = credit(&llm_values, chosen, false);
        let n = decision.children.len();
        total.add(ebm, llm, n);
        by_depth
            .entry(traj.nodes[decision.parent].depth)
            .or_default()
            .add(ebm, llm, n);
        siblings_seen += n;
        sibling_energies.extend(
            ebm_values
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != chosen)
                .map(|(_, &e)| e),
        );
    }
    let scored: Vec<(bool, f64)> = (0..traj.nodes.len())
        .filter(|&i| included(i) && !traj.nodes[i].status.is_terminal())
        .filter_map(|i| energy(i).map(|e| (traj.nodes[i].on_path, e)))
        .collect();
    Ok(EvalReport {
        split: split.name().to_string(),
        decisions: total.n,
        decisions_skipped: skipped,
        ebm_accuracy: total.share(total.ebm),
        llm_accuracy: total.share(total.llm),
        random_baseline: total.share(total.random),
        mean_siblings: if total.n == 0 {
            0.0
        } else {
            siblings_seen as f64 / total.n as f64
        },
        by_depth: by_depth
            .into_iter()
            .map(|(depth, t)| DepthRow {
                depth,
                decisions: t.n,
                ebm_accuracy: t.share(t.ebm),
                llm_accuracy: t.share(t.llm),
                random_baseline: t.share(t.random),
            })
            .collect(),
        nodes_scored: scored.len(),
        energy_on_path_mean: mean(scored.iter().filter(|(p, _)| *p).map(|(_, e)| *e)),
        energy_off_path_mean: mean(scored.iter().filter(|(p, _)| !*p).map(|(_, e)| *e)),
        energy_sibling_mean: mean(sibling_energies.into_iter()),
    })
}

/// Loads a head checkpoint and evaluates it on CPU (the head is small; the encoder is not
/// involved, the embeddings come from the cache).
pub fn evaluate_checkpoint(
    traj: &Trajectories,
    cache: &EmbeddingCache,
    head: &Path,
    split: Split,
) -> Result<EvalReport> {
    let device = Device::Cpu;
    check_identity(head, cache)?;
    let theorems = split_theorems(head, split)?;
    if let Some(t) = &theorems {
        if !traj.runs.iter().any(|r| t.contains(&r.theorem)) {
            return Err(EbmError::Split(format!(
                "none of the {} {} theorems of the head's run is in these trajectories",
                t.len(),
                split.name()
            )));
        }
    }
    let loaded = EnergyHead::load(head, &device)?;
    evaluate_theorems(traj, cache, &loaded, &device, theorems.as_ref(), split)
}

impl EvalReport {
    /// The human-readable table.
    pub fn render(&self) -> String {
        use std::fmt::Write as _;
        let opt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.4}"));
        let mut out = String::new();
        let _ = writeln!(
            out,
            "decisions        {} (skipped without embeddings: {}), {:.2} siblings on average, theorems: {}",
            self.decisions, self.decisions_skipped, self.mean_siblings, self.split
        );
        let _ = writeln!(out, "EBM accuracy     {:.4}", self.ebm_accuracy);
        let _ = writeln!(out, "LLM accuracy     {:.4}", self.llm_accuracy);
        let _ = writeln!(out, "random baseline  {:.4}", self.random_baseline);
        let _ = writeln!(
            out,
            "energy means     on path {}  off path {}  siblings {}  ({} nodes scored)",
            opt(self.energy_on_path_mean),
            opt(self.energy_off_path_mean),
            opt(self.energy_sibling_mean),
            self.nodes_scored
        );
        let _ = writeln!(out, "by depth         depth decisions    ebm    llm random");
        for row in &self.by_depth {
            let _ = writeln!(
                out,
                "                 {:>5} {:>9} {:>6.3} {:>6.3} {:>6.3}",
                row.depth, row.decisions, row.ebm_accuracy, row.llm_accuracy, row.random_baseline
            );
        }
        out
    }
}

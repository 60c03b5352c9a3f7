//! `DIR/iterate.json` of `stepwise iterate`: what each round of the value-model loop did,
//! per round its head, that head's sibling accuracy and both of its sweeps. The CLI writes it
//! from the round folders alone (docs/design.md, "`stepwise iterate`"); anything that compares
//! loops reads it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::identity::{EnergyScale, ModelIdentity};

pub const ITERATE_FILE: &str = "iterate.json";

/// `iterate.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IterateRecord {
    /// What decides the loop's results; `--resume` refuses a directory made by another.
    pub setup: Value,
    /// Rounds after round 0 the last invocation asked for.
    pub rounds_requested: usize,
    /// Finished rounds, round 0 (the policy alone) first.
    pub rounds: Vec<RoundRecord>,
}

/// One finished round: its head and both of its sweeps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoundRecord {
    pub round: usize,
    /// The head the round's sweeps used; null in round 0.
    pub head: Option<HeadRecord>,
    /// The head's sibling accuracy (`eval.json`); null in round 0.
    pub sibling_accuracy: Option<SiblingAccuracy>,
    pub eval: SweepRecord,
    pub train: SweepRecord,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeadRecord {
    /// The weights file, relative to DIR.
    pub path: String,
    /// What the EBM server reported serving during the round's sweeps (its encoder and the
    /// head's sha256), as the eval sweep's `manifest.json` recorded it.
    pub identity: Option<ModelIdentity>,
    /// The scale the priority standardised energies with (the manifest's `ebm_energy_scale`);
    /// null when it used raw energies.
    pub energy_scale: Option<EnergyScale>,
    /// Theorems the head was trained on and validated on (`train.json`); all from `--train`.
    pub train_theorems: usize,
    pub val_theorems: usize,
    /// The control's seed (`--shuffle-labels`), when the labels were shuffled.
    pub shuffle_labels: Option<u64>,
}

/// `eval.json`'s headline: at the proof-path decisions of the head's validation theorems,
/// how often each ranks the on-path child first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SiblingAccuracy {
    /// `val`, or `train` when the head has no validation theorems.
    pub split: String,
    pub decisions: usize,
    /// The head (lowest energy).
    pub head: f64,
    /// Picking a child at random: mean 1/siblings.
    pub random: f64,
    /// The policy (highest tactic log-prob).
    pub log_prob: f64,
}

/// One sweep of a round, from its `results.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepRecord {
    /// The sweep folder, relative to DIR.
    pub dir: String,
    pub theorems: usize,
    pub proved: usize,
    /// Nodes expanded over every theorem of the sweep.
    pub nodes_expanded: u64,
    /// Theorems of this side proved in every finished round: the ones
    /// `expansions_per_proof` is over, so rounds are compared on the same proofs.
    pub proved_in_every_round: usize,
    /// Mean `nodes_expanded` over those theorems; null when there is none.
    pub expansions_per_proof: Option<f64>,
    /// `expansions_per_proof` over round 0's.
    pub expansions_vs_round_0: Option<f64>,
    /// Generate requests of the whole sweep over the theorems proved.
    pub gen_calls_per_proof: Option<f64>,
    /// Generated tokens of the whole sweep over the theorems proved.
    pub tokens_per_proof: Option<f64>,
}

//! What an expansion asks the policy for (`[search].expansion`) and the search mode a run's
//! `config.json` describes: the sweep decides by it and the run-folder reports name it.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Expansion {
    #[default]
    /// Each sample's first tactic becomes a candidate child (`[policy].template`).
    Tactic,
    /// Each sample is the rest of the proof (`[policy].proof_template`), split into tactics
    /// and replayed from the node into the tree.
    Proof,
}

/// The `[search]` keys that decide the mode, as `config.json` records them. A key an older
/// `config.json` lacks reads as tactic mode, no probes, and not pass@n.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct SearchShape {
    pub expansion: Expansion,
    pub max_nodes: usize,
    pub num_candidates: usize,
    pub probe_tactics: Vec<String>,
}

impl SearchShape {
    /// `Some(n)` for the pass@n baseline: whole proofs, one expansion (the root) and no
    /// probes, so each of the `n` samples is judged as papers judge it.
    pub fn pass_at_n(&self) -> Option<usize> {
        (self.expansion == Expansion::Proof && self.max_nodes == 1 && self.probe_tactics.is_empty())
            .then_some(self.num_candidates)
    }

    /// `tactic`, `proof` or `pass@N`.
    pub fn mode(&self) -> String {
        match (self.pass_at_n(), self.expansion) {
            (Some(n), _) => format!("pass@{n}"),
            (None, Expansion::Tactic) => "tactic".into(),
            (None, Expansion::Proof) => "proof".into(),
        }
    }
}

//! Which value model is answering: the identity `ebm serve` reports on `GET /health` and a run
//! manifest records, so two runs scored by different encoders or heads are told apart.

use serde::{Deserialize, Serialize};

/// An encoder plus (optionally) an energy head, named by hashes of the files that decide its
/// outputs, and the numeric choices that change them without changing any file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelIdentity {
    /// sha256 of the encoder's `config.json`.
    pub config_sha256: String,
    /// sha256 of its `tokenizer.json`, followed by its `tokenizer_config.json` when there is
    /// one (that file decides BOS/EOS).
    pub tokenizer_sha256: String,
    /// Compute dtype (`f32`, `bf16`).
    pub dtype: String,
    /// How hidden states become one embedding (`mean`).
    pub pooling: String,
    /// sha256 of the energy head's weights, when a head is loaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_sha256: Option<String>,
}

/// The JSON body of `GET /health` (200 when ready). An older server answers with an empty
/// body; clients then know it is up but not which model it serves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthResponse {
    pub identity: ModelIdentity,
}

/// What `GET /health` (and `POST /head`) say about the served head beyond
/// [`ModelIdentity::head_sha256`]. Its own type, read from the same body as
/// [`HealthResponse`], so servers that build a `HealthResponse` need no change; every field
/// is absent from an older server's answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HeadHealth {
    /// The weights file the head was loaded from, as an absolute path; null without a head
    /// (or for one built in memory).
    #[serde(default)]
    pub head_path: Option<String>,
    /// The head's energies over its validation split, recorded by `ebm train`; null when the
    /// head's `train.json` has none for these weights.
    #[serde(default)]
    pub energy_scale: Option<EnergyScale>,
}

/// The mean and standard deviation of a head's energies over the states of its validation
/// split: the scale that makes energies of different heads comparable.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EnergyScale {
    pub mean: f64,
    pub std: f64,
}

impl EnergyScale {
    /// `(energy - mean) / std`: how many standard deviations above the head's mean.
    pub fn standardise(&self, energy: f64) -> f64 {
        (energy - self.mean) / self.std
    }

    /// Whether it can standardise: both finite and `std > 0` (a head whose energies
    /// collapsed to a constant has none that means anything).
    pub fn is_usable(&self) -> bool {
        self.mean.is_finite() && self.std.is_finite() && self.std > 0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_health_reads_an_older_body_as_empty() {
        let old = r#"{"status": "ok", "identity": {"config_sha256": "c", "tokenizer_sha256": "t",
            "dtype": "f32", "pooling": "mean"}}"#;
        assert_eq!(
            serde_json::from_str::<HeadHealth>(old).unwrap(),
            HeadHealth::default()
        );
        assert!(serde_json::from_str::<HealthResponse>(old).is_ok());
    }

    #[test]
    fn standardise_and_usable() {
        let scale = EnergyScale {
            mean: 2.0,
            std: 0.5,
        };
        assert_eq!(scale.standardise(3.0), 2.0);
        assert!(scale.is_usable());
        assert!(!EnergyScale {
            mean: 0.0,
            std: 0.0
        }
        .is_usable());
        assert!(!EnergyScale {
            mean: f64::NAN,
            std: 1.0
        }
        .is_usable());
    }
}

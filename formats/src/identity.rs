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

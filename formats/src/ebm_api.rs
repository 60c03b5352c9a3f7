//! The bodies of `stepwise ebm serve`'s HTTP API, shared by the server, the search's client and
//! `ebm embed`'s client (the `/health` body, also the answer to `/head`, is in
//! [`crate::identity`]). Requests refuse unknown fields so a misspelt key is a 400 naming it.

use serde::{Deserialize, Serialize};

/// `POST /score`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreRequest {
    pub states: Vec<String>,
}

/// The answer to `/score`: one energy per state, in order; lower is more provable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreResponse {
    pub energies: Vec<f64>,
}

/// `POST /encode`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncodeRequest {
    pub texts: Vec<String>,
}

/// The answer to `/encode`: one embedding per text, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EncodeResponse {
    pub embeddings: Vec<Vec<f32>>,
}

/// `POST /head`: serve the head at `path` (a `NAME.safetensors` with `NAME.json` beside it, on
/// the server's file system; relative to its working directory) in place of the current one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeadRequest {
    pub path: String,
}

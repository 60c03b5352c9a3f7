//! The one error type of the encoder, head and server: every variant names the file or value
//! that was wrong, so a failed load says what to fix.

use std::path::PathBuf;

use formats::identity::ModelIdentity;
use formats::tokenizer_config::TokenizerConfigError;

use crate::identity::show;

#[derive(Debug, thiserror::Error)]
pub enum EbmError {
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    // The cause is in the message, not exposed as `source`, so error chains print it once.
    #[error("{path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{path}: invalid JSON: {error}")]
    Json {
        path: PathBuf,
        error: serde_json::Error,
    },
    #[error("model config {path}: {message}")]
    ModelConfig { path: PathBuf, message: String },
    #[error("tokenizer {path}: {message}")]
    Tokenizer { path: PathBuf, message: String },
    #[error("tokenization failed: {0}")]
    Encode(String),
    #[error("device {device:?}: {message}")]
    Device { device: String, message: String },
    #[error("energy head config: {0}")]
    HeadConfig(String),
    #[error("evaluation split: {0}")]
    Split(String),
    /// A head meets embeddings of a model other than the one it was trained on.
    #[error(
        "the head was trained on embeddings of another model ({}: {}) than {given} ({})",
        recorded_in.display(),
        show(trained),
        show(other)
    )]
    OtherModel {
        /// The `train.json` that records the head's model.
        recorded_in: PathBuf,
        trained: Box<ModelIdentity>,
        /// Whose embeddings `other` makes: "the encoder served", "this cache's".
        given: &'static str,
        other: Box<ModelIdentity>,
    },
    #[error("the energy head takes {head} features, the encoder's hidden size is {encoder}")]
    HeadWidth { head: usize, encoder: usize },
}

pub type Result<T> = std::result::Result<T, EbmError>;

impl From<TokenizerConfigError> for EbmError {
    fn from(e: TokenizerConfigError) -> Self {
        match e {
            TokenizerConfigError::Io { path, source } => EbmError::Io {
                path,
                error: source,
            },
            TokenizerConfigError::Json { path, source } => EbmError::Json {
                path,
                error: source,
            },
            TokenizerConfigError::Invalid { path, message } => {
                EbmError::Tokenizer { path, message }
            }
        }
    }
}

impl EbmError {
    pub(crate) fn io(path: impl Into<PathBuf>, error: std::io::Error) -> Self {
        EbmError::Io {
            path: path.into(),
            error,
        }
    }
}

//! The served model's `formats::identity::ModelIdentity`: hashes of the files that decide an
//! embedding, the compute dtype and the pooling.

use std::io::Read;
use std::path::Path;

use formats::identity::ModelIdentity;
use sha2::{Digest, Sha256};

use crate::error::{EbmError, Result};

/// sha256 (hex) of the files' bytes, one after the other.
pub fn file_sha256(paths: &[&Path]) -> Result<String> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    for path in paths {
        let mut file = std::fs::File::open(path).map_err(|e| EbmError::io(*path, e))?;
        loop {
            let n = file.read(&mut buf).map_err(|e| EbmError::io(*path, e))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
    }
    Ok(format!("{:x}", hasher.finalize()))
}

/// The encoder in model directory `dir`: `config.json`; `tokenizer.json` followed by
/// `tokenizer_config.json` when present (it decides BOS/EOS); mean pooling.
pub fn encoder_identity(dir: &Path, dtype: candle_core::DType) -> Result<ModelIdentity> {
    let tokenizer = dir.join("tokenizer.json");
    let tokenizer_config = dir.join("tokenizer_config.json");
    let mut tokenizer_files = vec![tokenizer.as_path()];
    if tokenizer_config.exists() {
        tokenizer_files.push(tokenizer_config.as_path());
    }
    Ok(ModelIdentity {
        config_sha256: file_sha256(&[&dir.join("config.json")])?,
        tokenizer_sha256: file_sha256(&tokenizer_files)?,
        dtype: dtype.as_str().to_string(),
        pooling: "mean".to_string(),
        head_sha256: None,
    })
}

/// An identity as one line of JSON, for error messages that name it.
pub(crate) fn show(identity: &ModelIdentity) -> String {
    serde_json::to_string(identity).unwrap_or_default()
}

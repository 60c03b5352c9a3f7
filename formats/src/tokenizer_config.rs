//! A Hugging Face model directory's `tokenizer_config.json`: the special tokens and the flags
//! that decide what transformers puts around a text. Two crates read it: the value model
//! (`ebm`) builds its tokenizer's BOS/EOS from it, and the prover (`search`) takes the policy
//! model's BOS from it to check that each prompt reaches the model with exactly one. One
//! reading of the file serves both.

use std::path::{Path, PathBuf};

use serde_json::Value;

pub const TOKENIZER_CONFIG_FILE: &str = "tokenizer_config.json";

#[derive(Debug, thiserror::Error)]
pub enum TokenizerConfigError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: invalid JSON: {source}")]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// A special token's entry (`bos_token`, `eos_token`, ...) as the file writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpecialToken {
    /// No such key: the tokenizer class's default applies.
    Absent,
    /// `null`: the tokenizer has no such token (Qwen2's `bos_token`).
    Null,
    /// The token's text: a string, or an AddedToken object's `content`.
    Text(String),
}

/// One `tokenizer_config.json`, parsed.
#[derive(Debug, Clone)]
pub struct TokenizerConfig {
    path: PathBuf,
    json: Value,
}

impl TokenizerConfig {
    /// `dir/tokenizer_config.json`, or `None` when the directory has none.
    pub fn read(dir: &Path) -> Result<Option<Self>, TokenizerConfigError> {
        let path = dir.join(TOKENIZER_CONFIG_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(TokenizerConfigError::Io { path, source }),
        };
        match serde_json::from_str(&text) {
            Ok(json) => Ok(Some(Self { path, json })),
            Err(source) => Err(TokenizerConfigError::Json { path, source }),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `tokenizer_class`, e.g. `LlamaTokenizerFast`.
    pub fn class(&self) -> Option<&str> {
        self.json.get("tokenizer_class").and_then(Value::as_str)
    }

    /// A boolean flag such as `add_bos_token`; `default` when absent or `null`.
    pub fn flag(&self, key: &str, default: bool) -> Result<bool, TokenizerConfigError> {
        match self.json.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => Err(self.invalid(format!("{key:?} must be true or false, not {other}"))),
        }
    }

    /// A special token: a string, or an AddedToken object `{"content": ..., ...}` (what
    /// transformers writes when the token carries `lstrip`/`normalized` settings).
    pub fn special_token(&self, key: &str) -> Result<SpecialToken, TokenizerConfigError> {
        match self.json.get(key) {
            None => Ok(SpecialToken::Absent),
            Some(Value::Null) => Ok(SpecialToken::Null),
            Some(Value::String(s)) => Ok(SpecialToken::Text(s.clone())),
            Some(Value::Object(o)) => o
                .get("content")
                .and_then(Value::as_str)
                .map(|s| SpecialToken::Text(s.to_owned()))
                .ok_or_else(|| self.invalid(format!("{key:?} has no string \"content\""))),
            Some(other) => Err(self.invalid(format!("{key:?} is {other}, not a token"))),
        }
    }

    fn invalid(&self, message: String) -> TokenizerConfigError {
        TokenizerConfigError::Invalid {
            path: self.path.clone(),
            message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> (tempfile::TempDir, TokenizerConfig) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(TOKENIZER_CONFIG_FILE), text).unwrap();
        let config = TokenizerConfig::read(dir.path()).unwrap().unwrap();
        (dir, config)
    }

    #[test]
    fn special_tokens_are_strings_or_added_token_objects() {
        // DeepSeek-Prover's form: the BOS as an AddedToken object, the EOS a string.
        let (_dir, c) = config(
            r#"{"bos_token": {"__type": "AddedToken", "content": "<｜begin▁of▁sentence｜>",
                "lstrip": false}, "eos_token": "</s>", "pad_token": null,
                "tokenizer_class": "LlamaTokenizerFast", "add_bos_token": true}"#,
        );
        assert_eq!(
            c.special_token("bos_token").unwrap(),
            SpecialToken::Text("<｜begin▁of▁sentence｜>".into())
        );
        assert_eq!(
            c.special_token("eos_token").unwrap(),
            SpecialToken::Text("</s>".into())
        );
        assert_eq!(c.special_token("pad_token").unwrap(), SpecialToken::Null);
        assert_eq!(c.special_token("unk_token").unwrap(), SpecialToken::Absent);
        assert_eq!(c.class(), Some("LlamaTokenizerFast"));
        assert!(c.flag("add_bos_token", false).unwrap());
        assert!(!c.flag("add_eos_token", false).unwrap());
    }

    #[test]
    fn malformed_entries_name_the_file_and_key() {
        let (_dir, c) =
            config(r#"{"bos_token": {"lstrip": false}, "eos_token": 2, "add_bos_token": "yes"}"#);
        for e in [
            c.special_token("bos_token").unwrap_err(),
            c.special_token("eos_token").unwrap_err(),
            c.flag("add_bos_token", true).unwrap_err(),
        ] {
            let message = e.to_string();
            assert!(message.contains(TOKENIZER_CONFIG_FILE), "{message}");
            assert!(message.contains("_token"), "{message}");
        }
        let dir = tempfile::tempdir().unwrap();
        assert!(TokenizerConfig::read(dir.path()).unwrap().is_none());
        std::fs::write(dir.path().join(TOKENIZER_CONFIG_FILE), "{").unwrap();
        assert!(matches!(
            TokenizerConfig::read(dir.path()),
            Err(TokenizerConfigError::Json { .. })
        ));
    }
}

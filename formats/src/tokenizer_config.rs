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

/// A model's BOS token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BosToken {
    pub id: u32,
    /// Its text, when the model directory says it.
    pub text: Option<String>,
}

/// The BOS token of the model in `dir`, as transformers finds it: `tokenizer_config.json`'s
/// `bos_token` gives its text, whose id is that content's entry in `tokenizer.json`'s
/// `added_tokens`; without a `bos_token` there, `config.json`'s `bos_token_id` (with its text
/// when `added_tokens` lists the id). `None`: the tokenizer has no BOS (`"bos_token": null`,
/// as Qwen2's) or the directory names none.
pub fn read_bos_token(dir: &Path) -> Result<Option<BosToken>, TokenizerConfigError> {
    let bad = |message: String| TokenizerConfigError::Invalid {
        path: dir.to_owned(),
        message,
    };
    if !dir.is_dir() {
        return Err(bad("not a folder".into()));
    }
    let added = added_tokens(dir)?;
    let config_id = match read_json(dir, "config.json")? {
        Some(config) => match config.get("bos_token_id") {
            None | Some(Value::Null) => None,
            Some(id) => Some(
                id.as_u64()
                    .and_then(|id| u32::try_from(id).ok())
                    .ok_or_else(|| {
                        bad(format!("config.json's bos_token_id {id} is not a token id"))
                    })?,
            ),
        },
        None => None,
    };
    let named = match TokenizerConfig::read(dir)? {
        Some(config) => config.special_token("bos_token")?,
        None => SpecialToken::Absent,
    };
    match named {
        SpecialToken::Null => Ok(None),
        SpecialToken::Text(text) => {
            let id = added
                .iter()
                .find(|(_, content)| *content == text)
                .map(|(id, _)| *id)
                .or(config_id)
                .ok_or_else(|| {
                    bad(format!(
                        "the BOS {text:?} of tokenizer_config.json is not among tokenizer.json's \
                         added_tokens, and config.json has no bos_token_id"
                    ))
                })?;
            Ok(Some(BosToken {
                id,
                text: Some(text),
            }))
        }
        SpecialToken::Absent => Ok(config_id.map(|id| BosToken {
            id,
            text: added
                .iter()
                .find(|(added, _)| *added == id)
                .map(|(_, content)| content.clone()),
        })),
    }
}

/// `tokenizer.json`'s `added_tokens` as (id, content); none without the file.
fn added_tokens(dir: &Path) -> Result<Vec<(u32, String)>, TokenizerConfigError> {
    let Some(tokenizer) = read_json(dir, "tokenizer.json")? else {
        return Ok(Vec::new());
    };
    Ok(tokenizer
        .get("added_tokens")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| {
            let id = u32::try_from(t.get("id")?.as_u64()?).ok()?;
            Some((id, t.get("content")?.as_str()?.to_owned()))
        })
        .collect())
}

/// `dir/name` parsed, or `None` when the file is absent.
fn read_json(dir: &Path, name: &str) -> Result<Option<Value>, TokenizerConfigError> {
    let bad = |message: String| TokenizerConfigError::Invalid {
        path: dir.to_owned(),
        message,
    };
    match std::fs::read_to_string(dir.join(name)) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| bad(format!("{name}: invalid JSON: {e}"))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(bad(format!("{name}: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEEPSEEK_BOS: &str = "<｜begin▁of▁sentence｜>";

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

    fn model_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        dir
    }

    const ADDED: &str = r#"{"added_tokens": [{"id": 100000, "content": "<｜begin▁of▁sentence｜>",
        "special": true}, {"id": 100001, "content": "<｜end▁of▁sentence｜>", "special": true}]}"#;

    /// DeepSeek's layout: the BOS as an AddedToken object, its id in tokenizer.json.
    #[test]
    fn the_bos_comes_from_tokenizer_config_with_its_id_from_tokenizer_json() {
        let dir = model_dir(&[
            (
                "tokenizer_config.json",
                r#"{"bos_token": {"__type": "AddedToken", "content": "<｜begin▁of▁sentence｜>"},
                    "add_bos_token": true, "tokenizer_class": "LlamaTokenizerFast"}"#,
            ),
            ("tokenizer.json", ADDED),
            ("config.json", r#"{"bos_token_id": 100000}"#),
        ]);
        let bos = read_bos_token(dir.path()).unwrap().unwrap();
        assert_eq!((bos.id, bos.text.as_deref()), (100000, Some(DEEPSEEK_BOS)));
    }

    #[test]
    fn config_json_gives_the_id_when_tokenizer_config_does_not_name_the_bos() {
        let only_config = model_dir(&[("config.json", r#"{"bos_token_id": 100000}"#)]);
        assert_eq!(
            read_bos_token(only_config.path()).unwrap(),
            Some(BosToken {
                id: 100000,
                text: None
            })
        );
        let with_added = model_dir(&[
            ("config.json", r#"{"bos_token_id": 100000}"#),
            ("tokenizer.json", ADDED),
        ]);
        assert_eq!(
            read_bos_token(with_added.path())
                .unwrap()
                .unwrap()
                .text
                .as_deref(),
            Some(DEEPSEEK_BOS)
        );
        // Qwen2: a bos_token_id in config.json, but the tokenizer has no BOS.
        let qwen = model_dir(&[
            ("config.json", r#"{"bos_token_id": 151643}"#),
            ("tokenizer_config.json", r#"{"bos_token": null}"#),
        ]);
        assert_eq!(read_bos_token(qwen.path()).unwrap(), None);
        let unknown = model_dir(&[("tokenizer_config.json", r#"{"bos_token": "<s>"}"#)]);
        let e = read_bos_token(unknown.path()).unwrap_err().to_string();
        assert!(e.contains("added_tokens"), "{e}");
        let e = read_bos_token(&unknown.path().join("missing")).unwrap_err();
        assert!(e.to_string().contains("not a folder"), "{e}");
    }
}

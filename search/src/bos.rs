//! Exactly one BOS at the start of every prompt.
//!
//! SGLang tokenizes a request's `text` with the tokenizer's defaults: `_tokenize_texts`
//! (`python/sglang/srt/managers/tokenizer_manager.py`) calls the Hugging Face tokenizer
//! without `add_special_tokens`, so transformers' default `True` applies and the model's
//! `tokenizer_config.json` (`add_bos_token`, its tokenizer class) decides whether a BOS goes
//! first. vLLM's completions do the same (`add_special_tokens` defaults to true,
//! `vllm/entrypoints/openai/protocol.py`). The DeepSeek templates write no BOS text, so a
//! tokenizer that adds none feeds every prompt to the model without the BOS it was trained
//! with, and a prompt that writes one to a tokenizer that adds one feeds two. Nothing fails
//! either way; the samples just get worse. So a sweep (and `stepwise doctor`) asks the server
//! once, at start, how it tokenized the first prompt and counts the BOS tokens in front
//! ([`judge`]). `policy.bos` says who writes the BOS; its id and text come from
//! `policy.model_dir` ([`read_bos_token`]), since neither SGLang's `/get_model_info` nor
//! vLLM's `/v1/models` reports them.

use std::path::{Path, PathBuf};

use formats::tokenizer_config::{SpecialToken, TokenizerConfig, TokenizerConfigError};
use serde_json::Value;

use crate::config::BosSetting;
pub use formats::manifest::BosCount;

/// DeepSeek-Prover-V1.5's and V2's BOS text: `bos_token` in their `tokenizer_config.json`,
/// id 100000 (`bos_token_id` in their `config.json`).
pub const DEEPSEEK_BOS: &str = "<｜begin▁of▁sentence｜>";

/// The policy model's BOS token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BosToken {
    pub id: u32,
    /// Its text, when the model directory says it.
    pub text: Option<String>,
}

/// One token of a prompt as the server tokenized it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptToken {
    pub id: u32,
    /// Its text, when the server returned it.
    pub text: Option<String>,
}

/// The text `policy.bos = "template"` writes before every prompt, and where it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BosText {
    pub text: String,
    pub source: String,
}

#[derive(Debug, thiserror::Error)]
pub enum BosError {
    #[error(transparent)]
    TokenizerConfig(#[from] TokenizerConfigError),
    #[error("policy.model_dir {path}: {message}")]
    ModelDir { path: PathBuf, message: String },
    #[error("policy.bos = \"template\" needs the BOS text: {0}")]
    NoText(String),
}

/// The BOS token of the model in `dir`, as transformers finds it: `tokenizer_config.json`'s
/// `bos_token` gives its text, whose id is that content's entry in `tokenizer.json`'s
/// `added_tokens`; without a `bos_token` there, `config.json`'s `bos_token_id` (with its text
/// when `added_tokens` lists the id). `None`: the tokenizer has no BOS (`"bos_token": null`,
/// as Qwen2's) or the directory names none.
pub fn read_bos_token(dir: &Path) -> Result<Option<BosToken>, BosError> {
    let bad = |message: String| BosError::ModelDir {
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
fn added_tokens(dir: &Path) -> Result<Vec<(u32, String)>, BosError> {
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
fn read_json(dir: &Path, name: &str) -> Result<Option<Value>, BosError> {
    let bad = |message: String| BosError::ModelDir {
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

/// The BOS text a `policy.bos = "template"` prompt starts with: the model directory's when
/// `policy.model_dir` is set, else that of the template's model family (only DeepSeek's is
/// known; the other built-ins' models differ in whether they have a BOS at all).
pub fn template_bos_text(
    template: &str,
    model_dir: Option<&str>,
    token: Option<&BosToken>,
) -> Result<BosText, BosError> {
    match (model_dir, token) {
        (
            Some(dir),
            Some(BosToken {
                text: Some(text), ..
            }),
        ) => Ok(BosText {
            text: text.clone(),
            source: format!("the tokenizer in {dir}"),
        }),
        (Some(dir), Some(BosToken { id, text: None })) => Err(BosError::NoText(format!(
            "the tokenizer in {dir} has the BOS id {id} but says no text for it \
             (tokenizer_config.json's bos_token, tokenizer.json's added_tokens)"
        ))),
        (Some(dir), None) => Err(BosError::NoText(format!(
            "the tokenizer in {dir} names no BOS token: set policy.bos = \"server\""
        ))),
        (None, _) if template.starts_with("deepseek-") => Ok(BosText {
            text: DEEPSEEK_BOS.to_owned(),
            source: format!("DeepSeek-Prover's tokenizer (template `{template}`)"),
        }),
        (None, _) => Err(BosError::NoText(format!(
            "the BOS of template `{template}`'s model is not known: set policy.model_dir to the \
             model's folder"
        ))),
    }
}

/// What the start-up check found, and what it was judged from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BosCheck {
    pub count: BosCount,
    pub detail: String,
}

/// Counts the BOS tokens in front of a prompt the server tokenized as `tokens` (`None`: the
/// server cannot say). With the BOS id, the leading tokens that are it; without, only two
/// equal special tokens in front can be told (`two`); anything else is `unchecked`.
pub fn judge(tokens: Option<&[PromptToken]>, bos: Option<&BosToken>) -> BosCheck {
    let check = |count, detail: String| BosCheck { count, detail };
    let Some(tokens) = tokens else {
        return check(
            BosCount::Unchecked,
            "the server does not show how it tokenizes a prompt (no /tokenize)".into(),
        );
    };
    let first = tokens
        .iter()
        .take(3)
        .map(show)
        .collect::<Vec<_>>()
        .join(", ");
    match bos {
        Some(bos) => {
            let n = tokens.iter().take_while(|t| t.id == bos.id).count();
            let count = match n {
                0 => BosCount::None,
                1 => BosCount::One,
                _ => BosCount::Two,
            };
            check(
                count,
                format!(
                    "{n} BOS (id {}) in front; the prompt starts {first}",
                    bos.id
                ),
            )
        }
        None => match tokens {
            [a, b, ..]
                if a.id == b.id
                    && a.text == b.text
                    && a.text.as_deref().is_none_or(looks_special) =>
            {
                check(
                    BosCount::Two,
                    format!("the prompt starts with the same special token twice: {first}"),
                )
            }
            _ => check(
                BosCount::Unchecked,
                format!("no BOS id is known (set policy.model_dir) and the prompt starts {first}"),
            ),
        },
    }
}

/// Special tokens are written in angle brackets (`<s>`, `<｜begin▁of▁sentence｜>`,
/// `<|endoftext|>`); text tokens seldom are.
fn looks_special(text: &str) -> bool {
    text.len() > 2 && text.starts_with('<') && text.ends_with('>')
}

fn show(token: &PromptToken) -> String {
    match &token.text {
        Some(text) => format!("{text:?} ({})", token.id),
        None => format!("id {}", token.id),
    }
}

/// What is wrong with `count` under `setting` and how to fix it: `None` when a sweep may
/// start (one BOS, or a count the server did not allow).
pub fn problem(count: BosCount, setting: BosSetting) -> Option<(String, String)> {
    let (problem, fix) = match (count, setting) {
        (BosCount::One | BosCount::Unchecked, _) => return None,
        (BosCount::None, BosSetting::Server) => (
            "the server's tokenizer puts no BOS before the prompt, and the model was trained \
             with one",
            "set policy.bos = \"template\" so the prompt starts with the BOS text",
        ),
        (BosCount::None, BosSetting::Template) => (
            "the prompt's BOS text did not become the BOS token",
            "set policy.model_dir to the model's folder so the BOS text is read from its \
             tokenizer",
        ),
        (BosCount::Two, BosSetting::Template) => (
            "the prompt starts with two BOS tokens: the template writes one and the server's \
             tokenizer adds another",
            "set policy.bos = \"server\"",
        ),
        (BosCount::Two, BosSetting::Server) => (
            "the prompt starts with two BOS tokens: the template's text has one and the \
             server's tokenizer adds another",
            "remove the BOS text from the template",
        ),
    };
    Some((problem.to_owned(), fix.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(list: &[(u32, Option<&str>)]) -> Vec<PromptToken> {
        list.iter()
            .map(|(id, text)| PromptToken {
                id: *id,
                text: text.map(str::to_owned),
            })
            .collect()
    }

    const BOS: BosToken = BosToken {
        id: 100000,
        text: None,
    };

    #[test]
    fn leading_bos_tokens_are_counted_by_id() {
        let one = tokens(&[(100000, Some(DEEPSEEK_BOS)), (5, Some("Comp"))]);
        let two = tokens(&[(100000, None), (100000, None), (5, None)]);
        let none = tokens(&[(5, Some("Comp")), (6, Some("lete"))]);
        assert_eq!(judge(Some(&one), Some(&BOS)).count, BosCount::One);
        assert_eq!(judge(Some(&two), Some(&BOS)).count, BosCount::Two);
        assert_eq!(judge(Some(&none), Some(&BOS)).count, BosCount::None);
        assert_eq!(judge(None, Some(&BOS)).count, BosCount::Unchecked);
    }

    #[test]
    fn without_the_id_only_a_doubled_special_token_is_told() {
        let two = tokens(&[(1, Some("<s>")), (1, Some("<s>")), (5, Some("x"))]);
        assert_eq!(judge(Some(&two), None).count, BosCount::Two);
        let no_texts = tokens(&[(1, None), (1, None)]);
        assert_eq!(judge(Some(&no_texts), None).count, BosCount::Two);
        // One BOS, none, or a prompt that starts with a repeated text token: unknown.
        for t in [
            tokens(&[(1, Some("<s>")), (5, Some("x"))]),
            tokens(&[(5, Some("x")), (6, Some("y"))]),
            tokens(&[(7, Some("``")), (7, Some("``"))]),
            tokens(&[(1, Some("<s>"))]),
        ] {
            let check = judge(Some(&t), None);
            assert_eq!(check.count, BosCount::Unchecked, "{t:?}");
            assert!(
                check.detail.contains("policy.model_dir"),
                "{}",
                check.detail
            );
        }
    }

    #[test]
    fn the_fix_depends_on_who_writes_the_bos() {
        assert_eq!(problem(BosCount::One, BosSetting::Server), None);
        assert_eq!(problem(BosCount::Unchecked, BosSetting::Template), None);
        let fix = |count, setting| problem(count, setting).unwrap().1;
        assert!(fix(BosCount::None, BosSetting::Server).contains("policy.bos = \"template\""));
        assert!(fix(BosCount::Two, BosSetting::Template).contains("policy.bos = \"server\""));
        assert!(fix(BosCount::Two, BosSetting::Server).contains("remove the BOS text"));
        assert!(fix(BosCount::None, BosSetting::Template).contains("policy.model_dir"));
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

    #[test]
    fn the_template_bos_text_is_the_model_dirs_else_the_deepseek_familys() {
        let text = template_bos_text("deepseek-v2-chat", None, None).unwrap();
        assert_eq!(text.text, DEEPSEEK_BOS);
        let token = BosToken {
            id: 1,
            text: Some("<s>".into()),
        };
        let text = template_bos_text("internlm-step-prover", Some("/m"), Some(&token)).unwrap();
        assert_eq!(
            (text.text.as_str(), text.source.as_str()),
            ("<s>", "the tokenizer in /m")
        );
        for e in [
            template_bos_text("bfs-prover", None, None),
            template_bos_text("deepseek-v2-chat", Some("/m"), None),
            template_bos_text("custom", Some("/m"), Some(&BOS)),
        ] {
            assert!(matches!(e, Err(BosError::NoText(_))), "{e:?}");
        }
    }
}

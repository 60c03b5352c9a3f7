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
//! `policy.model_dir` (`formats::tokenizer_config::read_bos_token`), since neither SGLang's `/get_model_info` nor
//! vLLM's `/v1/models` reports them.

use formats::tokenizer_config::{BosToken, TokenizerConfigError};

use crate::config::BosSetting;
pub use formats::manifest::BosCount;

/// DeepSeek-Prover-V1.5's and V2's BOS text: `bos_token` in their `tokenizer_config.json`,
/// id 100000 (`bos_token_id` in their `config.json`).
pub const DEEPSEEK_BOS: &str = "<｜begin▁of▁sentence｜>";

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
    #[error("policy.model_dir: {0}")]
    ModelDir(#[from] TokenizerConfigError),
    #[error("policy.bos = \"template\" needs the BOS text: {0}")]
    NoText(String),
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

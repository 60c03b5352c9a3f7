//! The special tokens a Hugging Face tokenizer adds around a text, decided the way
//! transformers 4 decides them for the class DeepSeek's `tokenizer_config.json` names.
//!
//! transformers 4.57's `LlamaTokenizerFast.__init__` calls `update_post_processor()`, which
//! replaces `tokenizer.json`'s post-processor with the template
//! `"{bos}:0 $A:0 {eos}:0"`, BOS present iff `add_bos_token` (default true), EOS iff
//! `add_eos_token` (default false), `bos_token`/`eos_token` defaulting to `<s>`/`</s>`.
//! DeepSeek's configs say `"tokenizer_class": "LlamaTokenizerFast", "add_bos_token": true`
//! and their `tokenizer.json` is known to lack the template, so reading only `tokenizer.json`
//! loses the BOS. Any other class keeps `tokenizer.json`'s post-processor (4.57's
//! `PreTrainedTokenizerFast` ignores the flags). transformers 5.24 differs: its
//! `PreTrainedTokenizerBase._from_pretrained` drops both flags whenever a `tokenizer.json`
//! exists, so it adds no BOS to such a tokenizer; we follow 4, the version these configs were
//! written for (`tests/data/make_tiny_llama.py --config-bos` records 4.57.6's ids).

use std::path::Path;

use formats::tokenizer_config::{SpecialToken, TokenizerConfig};
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::Tokenizer;

use crate::error::{EbmError, Result};

/// What `tokenizer_config.json` asked for, resolved to token ids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecialTokens {
    pub bos: Option<(String, u32)>,
    pub eos: Option<(String, u32)>,
}

/// Reads `dir/tokenizer_config.json` (if any) and, for a Llama tokenizer class, installs
/// the template transformers 4 builds in place of `tokenizer.json`'s post-processor. Returns
/// the special tokens it installed, or None when `tokenizer.json`'s own post-processor stays.
pub fn apply_tokenizer_config(
    dir: &Path,
    tokenizer: &mut Tokenizer,
) -> Result<Option<SpecialTokens>> {
    let Some(config) = TokenizerConfig::read(dir)? else {
        return Ok(None);
    };
    let bad = |message: String| EbmError::Tokenizer {
        path: config.path().to_owned(),
        message,
    };
    if config.class().map(|c| c.trim_end_matches("Fast")) != Some("LlamaTokenizer") {
        return Ok(None);
    }
    let (add_bos, add_eos) = (
        config.flag("add_bos_token", true)?,
        config.flag("add_eos_token", false)?,
    );
    let token = |key: &str, default: &str| -> Result<(String, u32)> {
        let content = match config.special_token(key)? {
            SpecialToken::Absent => default.to_string(),
            SpecialToken::Text(text) => text,
            // LlamaTokenizerFast raises "add_bos_token = True but bos_token = None".
            SpecialToken::Null => {
                return Err(bad(format!(
                    "add_{key} is true but {key:?} is null, not a token"
                )))
            }
        };
        let id = tokenizer.token_to_id(&content).ok_or_else(|| {
            bad(format!(
                "{key} {content:?} is not in tokenizer.json's vocabulary"
            ))
        })?;
        Ok((content, id))
    };
    let specials = SpecialTokens {
        bos: if add_bos {
            Some(token("bos_token", "<s>")?)
        } else {
            None
        },
        eos: if add_eos {
            Some(token("eos_token", "</s>")?)
        } else {
            None
        },
    };
    tokenizer.with_post_processor(Some(template(&specials).map_err(bad)?));
    Ok(Some(specials))
}

/// transformers' `update_post_processor` template, verbatim in its format strings.
fn template(s: &SpecialTokens) -> std::result::Result<TemplateProcessing, String> {
    let bos = s.bos.as_ref().map(|(t, _)| t.as_str());
    let eos = s.eos.as_ref().map(|(t, _)| t.as_str());
    let single = format!(
        "{}$A:0{}",
        bos.map_or(String::new(), |b| format!("{b}:0 ")),
        eos.map_or(String::new(), |e| format!(" {e}:0"))
    );
    let pair = format!(
        "{single}{} $B:1{}",
        bos.map_or(String::new(), |b| format!(" {b}:1")),
        eos.map_or(String::new(), |e| format!(" {e}:1"))
    );
    let specials: Vec<(String, u32)> = s.bos.iter().chain(s.eos.iter()).cloned().collect();
    TemplateProcessing::builder()
        .try_single(single.as_str())
        .map_err(|e| format!("template {single:?}: {e}"))?
        .try_pair(pair.as_str())
        .map_err(|e| format!("template {pair:?}: {e}"))?
        .special_tokens(specials)
        .build()
        .map_err(|e| e.to_string())
}

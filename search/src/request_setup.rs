//! What every generate request of a run carries besides its prompts, decided in one place
//! from the config: the template (with the BOS text in front when the prompt writes it), the
//! stops, the token limit and the context. The sweep, the policy client, the manifest,
//! `doctor` and `prompt` all take it from here, so none of them can pair a proof template with
//! tactic stops.

use std::path::Path;

use crate::bos::{template_bos_text, BosError, BosText};
use crate::config::{BosSetting, Config, Expansion};
use crate::templates::{PromptInput, PromptTemplate, Stops, TemplateError};
use formats::theorems::Theorem;
use formats::tokenizer_config::{read_bos_token, BosToken};

/// The request settings of the configured `search.expansion`.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestSetup {
    /// `[policy].template`, or `[policy].proof_template` for whole proofs; with
    /// `policy.bos = "template"` its text starts with [`Self::bos_text`].
    pub template: PromptTemplate,
    /// `[policy].stop` and `stop_regex` (whole proofs: `proof_stop`), each unset one the
    /// template's own.
    pub stops: Stops,
    /// `[policy].max_new_tokens`, or `proof_max_new_tokens` for whole proofs.
    pub max_new_tokens: u32,
    /// `[policy].context_tokens`: unset, the policy client asks the server.
    pub context_tokens: Option<u32>,
    /// The BOS text every prompt starts with (`policy.bos = "template"`); `None`: the server's
    /// tokenizer adds the BOS.
    pub bos_text: Option<BosText>,
    /// The policy model's BOS token, read from `policy.model_dir` when it is set: what the
    /// start-up check counts.
    pub bos_token: Option<BosToken>,
}

/// Why a config gives no request setup.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error(transparent)]
    Bos(#[from] BosError),
}

impl RequestSetup {
    /// The setup of `config.search.expansion`; an unknown template name, an unreadable
    /// `policy.model_dir` or a `policy.bos = "template"` without a known BOS text is an error.
    pub fn from_config(config: &Config) -> Result<Self, SetupError> {
        let policy = &config.policy;
        let (template, stop, stop_regex, max_new_tokens) = match config.search.expansion {
            Expansion::Tactic => (
                PromptTemplate::from_config(&policy.template)?,
                &policy.stop,
                &policy.stop_regex,
                policy.max_new_tokens,
            ),
            // `[policy].stop` and `stop_regex` end one tactic; a whole proof runs to its
            // template's own end (the closing fence), and no regex cuts it at a line.
            Expansion::Proof => (
                PromptTemplate::from_proof_config(&policy.proof_template)?,
                &policy.proof_stop,
                &None,
                policy.proof_max_new_tokens,
            ),
        };
        let own = template.stops();
        let stops = Stops {
            strings: stop.clone().unwrap_or_else(|| own.strings.clone()),
            regexes: stop_regex.clone().unwrap_or_else(|| own.regexes.clone()),
        };
        let model_dir = policy.model_dir.as_deref();
        let bos_token = match model_dir {
            Some(dir) => read_bos_token(Path::new(dir)).map_err(BosError::from)?,
            None => None,
        };
        let bos_text = match policy.bos {
            BosSetting::Server => None,
            BosSetting::Template => Some(template_bos_text(
                template.name(),
                model_dir,
                bos_token.as_ref(),
            )?),
        };
        let template = match &bos_text {
            Some(bos) => template.prefixed(&bos.text),
            None => template,
        };
        Ok(Self {
            template,
            stops,
            max_new_tokens,
            context_tokens: policy.context_tokens,
            bos_text,
            bos_token,
        })
    }

    /// The root prompt of `theorem` (under `header`) as the start-up BOS check sends it. Its
    /// goals are not known before Lean is asked, so the statement stands in for them: the
    /// check reads only the prompt's first tokens.
    pub fn first_prompt(&self, theorem: &Theorem, header: &str) -> String {
        let statement = theorem.statement_head().to_owned();
        self.template
            .render(&PromptInput::new(theorem, header, &[], &statement))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn setup(toml: &str) -> Result<RequestSetup, SetupError> {
        RequestSetup::from_config(&Config::from_toml_str(toml, Path::new("c.toml"), &[]).unwrap())
    }

    #[test]
    fn tactic_mode_takes_the_policy_stops_else_the_templates_own() {
        let s = setup("").unwrap();
        assert_eq!(s.template.name(), "deepseek-tactic-state");
        assert_eq!(&s.stops, s.template.stops());
        assert_eq!(s.max_new_tokens, 128);
        let s =
            setup("[policy]\nstop = [\"\\n\"]\nstop_regex = []\ncontext_tokens = 4096\n").unwrap();
        assert_eq!(
            s.stops,
            Stops {
                strings: vec!["\n".into()],
                regexes: Vec::new()
            }
        );
        assert_eq!(s.context_tokens, Some(4096));
        let e = setup("[policy]\ntemplate = \"deepseek-v9\"\n").unwrap_err();
        assert!(e.to_string().contains("deepseek-v9"), "{e}");
    }

    #[test]
    fn proof_mode_swaps_template_tokens_and_stops() {
        let proof = "[search]\nexpansion = \"proof\"\n";
        let s = setup(proof).unwrap();
        assert_eq!(
            (s.template.name(), s.max_new_tokens),
            ("deepseek-v2-proof", 1024)
        );
        assert_eq!(
            s.stops,
            Stops {
                strings: vec!["```".into()],
                regexes: Vec::new()
            }
        );
        // The tactic requests' stops do not reach a whole proof; its own do.
        let s = setup(&format!(
            "{proof}[policy]\nstop = [\"\\n\"]\nstop_regex = [\"x\"]\nproof_stop = [\"END\"]\n"
        ))
        .unwrap();
        assert_eq!(
            s.stops,
            Stops {
                strings: vec!["END".into()],
                regexes: Vec::new()
            }
        );
        let e = setup(&format!(
            "{proof}[policy]\nproof_template = \"deepseek-tactic-state\"\n"
        ))
        .unwrap_err();
        assert!(e.to_string().contains("deepseek-v2-proof"), "{e}");
    }

    #[test]
    fn a_template_bos_starts_every_prompt_and_the_server_bos_none() {
        let theorem: Theorem = serde_json::from_value(serde_json::json!({
            "name": "t", "formal_statement": "theorem t : 1 + 1 = 2 := by\n"}))
        .unwrap();
        let server = setup("[policy]\ntemplate = \"deepseek-v2-chat\"\n").unwrap();
        assert_eq!(server.bos_text, None);
        let prompt = server.first_prompt(&theorem, "import Mathlib");
        assert!(prompt.starts_with("<｜User｜>"), "{prompt}");
        assert!(prompt.contains("theorem t : 1 + 1 = 2 := by\n"), "{prompt}");
        let template =
            setup("[policy]\ntemplate = \"deepseek-v2-chat\"\nbos = \"template\"\n").unwrap();
        assert_eq!(
            template.first_prompt(&theorem, "import Mathlib"),
            format!("{}{prompt}", crate::bos::DEEPSEEK_BOS)
        );
        // The model's own text, when its folder is given; none known for another family.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("tokenizer_config.json"),
            r#"{"bos_token": "<s>"}"#,
        )
        .unwrap();
        std::fs::write(dir.path().join("config.json"), r#"{"bos_token_id": 1}"#).unwrap();
        let with_dir = setup(&format!(
            "[policy]\ntemplate = \"internlm-step-prover\"\nbos = \"template\"\nmodel_dir = {:?}\n",
            dir.path().display().to_string()
        ))
        .unwrap();
        assert!(with_dir.template.text().starts_with("<s><|im_start|>user"));
        assert_eq!(with_dir.bos_token.map(|b| b.id), Some(1));
        let e = setup("[policy]\ntemplate = \"bfs-prover\"\nbos = \"template\"\n").unwrap_err();
        assert!(e.to_string().contains("policy.model_dir"), "{e}");
    }
}

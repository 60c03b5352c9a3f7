//! What every generate request of a run carries besides its prompts, decided in one place
//! from the config: the template, the stops, the token limit and the context. The sweep, the
//! policy client, the manifest, `doctor` and `prompt` all take it from here, so none of them
//! can pair a proof template with tactic stops.

use crate::config::{Config, Expansion};
use crate::templates::{PromptTemplate, Stops, TemplateError};

/// The request settings of the configured `search.expansion`.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestSetup {
    /// `[policy].template`, or `[policy].proof_template` for whole proofs.
    pub template: PromptTemplate,
    /// `[policy].stop` and `stop_regex` (whole proofs: `proof_stop`), each unset one the
    /// template's own.
    pub stops: Stops,
    /// `[policy].max_new_tokens`, or `proof_max_new_tokens` for whole proofs.
    pub max_new_tokens: u32,
    /// `[policy].context_tokens`: unset, the policy client asks the server.
    pub context_tokens: Option<u32>,
}

impl RequestSetup {
    /// The setup of `config.search.expansion`; an unknown template name is an error.
    pub fn from_config(config: &Config) -> Result<Self, TemplateError> {
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
        Ok(Self {
            template,
            stops,
            max_new_tokens,
            context_tokens: policy.context_tokens,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn setup(toml: &str) -> Result<RequestSetup, TemplateError> {
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
}

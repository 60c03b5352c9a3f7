//! The whole-proof check: the statement and the tactic script as one command on the header
//! environment, then `#print axioms` on the result. This is the last word on "proved".

use std::time::Duration;

use crate::cached_worker::{tactic_timeout, CachedWorker};
use crate::config::LeanConfig;
use crate::error::Failure;
use crate::outcome::ProofCheck;
use crate::protocol::{error_messages, CommandResponse, Message, Reply, Request, Severity};
use crate::theorem::Theorem;

/// The axiom every `sorry` (and every elaboration error) leaves behind.
const SORRY_AXIOM: &str = "sorryAx";

/// Checks `<statement> := by\n<body>` where `body` is already indented (see
/// [`indent_script`], [`indent_tactics`]).
pub(crate) async fn check_proof(
    worker: &mut CachedWorker,
    theorem: &Theorem,
    body: &str,
    config: &LeanConfig,
) -> Result<ProofCheck, Failure> {
    let env = worker
        .header_env(theorem.header_or(&config.header), config)
        .await?;
    let proof = format!("{} := by\n{body}", theorem.statement_head());
    // A whole proof runs every tactic: allow each line a tactic's time.
    let timeout = tactic_timeout(config).saturating_mul(1 + body.lines().count() as u32);
    let reply: Reply<CommandResponse> = worker
        .worker
        .send(&Request::command(&proof, env), timeout)
        .await?;
    let mut check = ProofCheck {
        verified: false,
        proof,
        errors: Vec::new(),
        axioms: Vec::new(),
    };
    let response = match reply {
        Ok(response) => response,
        Err(e) => {
            check.errors.push(e.message);
            return Ok(check);
        }
    };
    check.errors = elaboration_errors(&response);
    if !check.errors.is_empty() {
        return Ok(check);
    }
    let Some(name) = theorem.declaration_name() else {
        check
            .errors
            .push("no `theorem NAME` in the statement, so its axioms cannot be checked".into());
        return Ok(check);
    };
    let reply: Reply<CommandResponse> = worker
        .worker
        .send(
            &Request::command(format!("#print axioms {name}"), Some(response.env)),
            tactic_timeout(config).max(Duration::from_secs(1)),
        )
        .await?;
    match reply
        .map_err(|e| e.message)
        .and_then(|r| axioms_of(&r.messages, name))
    {
        Ok(axioms) => {
            check.errors = rejected_axioms(&axioms, &config.allowed_axioms);
            check.axioms = axioms;
            check.verified = check.errors.is_empty();
        }
        Err(message) => check
            .errors
            .push(format!("#print axioms {name}: {message}")),
    }
    Ok(check)
}

/// Why an elaborated proof is not a proof: Lean's errors, sorries, the "declaration uses
/// sorry" warning (Lean quotes the word as 'sorry' or `sorry` depending on its version).
fn elaboration_errors(response: &CommandResponse) -> Vec<String> {
    let mut errors = error_messages(&response.messages);
    if !response.sorries.is_empty() {
        errors.push(format!(
            "the proof has {} sorry goal(s)",
            response.sorries.len()
        ));
    }
    let uses_sorry = response.messages.iter().any(|m| {
        m.severity == Severity::Warning
            && (m.data.contains("declaration uses 'sorry'")
                || m.data.contains("declaration uses `sorry`"))
    });
    if uses_sorry {
        errors.push("declaration uses sorry".into());
    }
    errors
}

/// Reads `'NAME' depends on axioms: [a, b]` or `'NAME' does not depend on any axioms`.
fn axioms_of(messages: &[Message], name: &str) -> Result<Vec<String>, String> {
    for message in messages {
        let data = message.data.trim();
        if data.contains("does not depend on any axioms") {
            return Ok(Vec::new());
        }
        if let Some((_, list)) = data.split_once("depends on axioms:") {
            let list = list.trim();
            let inner = list
                .strip_prefix('[')
                .and_then(|l| l.strip_suffix(']'))
                .ok_or_else(|| format!("unexpected axiom list {list:?}"))?;
            return Ok(inner
                .split(',')
                .map(|a| a.trim().to_owned())
                .filter(|a| !a.is_empty())
                .collect());
        }
    }
    let said: Vec<&str> = messages.iter().map(|m| m.data.as_str()).collect();
    Err(format!("no axiom report for '{name}' (Lean said {said:?})"))
}

/// `sorryAx` is never allowed; anything else must be listed in `allowed`.
fn rejected_axioms(axioms: &[String], allowed: &[String]) -> Vec<String> {
    axioms
        .iter()
        .filter(|a| a.as_str() == SORRY_AXIOM || !allowed.contains(a))
        .map(|a| {
            if a == SORRY_AXIOM {
                "the proof depends on sorryAx".to_owned()
            } else {
                format!("the proof depends on axiom `{a}`, not in lean.allowed_axioms")
            }
        })
        .collect()
}

/// A script as found after `by` (a proofs file): its common indentation is removed and
/// every line indented by two spaces under the statement.
pub(crate) fn indent_script(script: &str) -> String {
    let script = script.trim_matches('\n').trim_end();
    let margin = script
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    script
        .lines()
        .map(|l| {
            if l.trim().is_empty() {
                String::new()
            } else {
                format!("  {}", &l[margin..])
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Tactics as applied one by one: each starts at column 0 of its own text, continuation
/// lines keep their indentation relative to it, so every line moves right by two.
pub(crate) fn indent_tactics(tactics: &[String]) -> String {
    tactics
        .iter()
        .flat_map(|t| t.trim_end().lines())
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Pos;

    fn message(severity: Severity, data: &str) -> Message {
        Message {
            severity,
            pos: Pos { line: 1, column: 0 },
            end_pos: None,
            data: data.into(),
        }
    }

    #[test]
    fn reads_axiom_reports() {
        let m = [message(
            Severity::Info,
            "'foo' depends on axioms: [propext, sorryAx, Classical.choice]",
        )];
        assert_eq!(
            axioms_of(&m, "foo").unwrap(),
            vec!["propext", "sorryAx", "Classical.choice"]
        );
        let m = [message(
            Severity::Info,
            "'foo' does not depend on any axioms",
        )];
        assert!(axioms_of(&m, "foo").unwrap().is_empty());
        assert!(axioms_of(&[message(Severity::Error, "unknown constant 'foo'")], "foo").is_err());
    }

    #[test]
    fn sorry_axiom_and_unlisted_axioms_are_rejected() {
        let allowed = vec!["propext".to_owned(), "sorryAx".to_owned()];
        let axioms = vec![
            "propext".to_owned(),
            "sorryAx".to_owned(),
            "Lean.ofReduceBool".to_owned(),
        ];
        let rejected = rejected_axioms(&axioms, &allowed);
        assert_eq!(rejected.len(), 2, "{rejected:?}");
    }

    #[test]
    fn sorry_warning_in_both_quotings() {
        for data in ["declaration uses 'sorry'", "declaration uses `sorry`"] {
            let response = CommandResponse {
                env: 1,
                messages: vec![message(Severity::Warning, data)],
                sorries: Vec::new(),
            };
            assert_eq!(
                elaboration_errors(&response),
                vec!["declaration uses sorry"]
            );
        }
    }

    #[test]
    fn scripts_and_tactics_are_indented_under_the_statement() {
        assert_eq!(indent_script("  intro x\n  simp\n"), "  intro x\n  simp");
        assert_eq!(
            indent_script("\nconstructor\n· simp\n· exact h"),
            "  constructor\n  · simp\n  · exact h"
        );
        assert_eq!(
            indent_script("have h : p := by\n  simp\nexact h"),
            "  have h : p := by\n    simp\n  exact h"
        );
        let tactics = vec![
            "intro x".to_owned(),
            "have h : p := by\n  simp".to_owned(),
            "exact h".to_owned(),
        ];
        assert_eq!(
            indent_tactics(&tactics),
            "  intro x\n  have h : p := by\n    simp\n  exact h"
        );
    }
}

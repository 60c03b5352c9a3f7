//! The whole-proof check: the statement and the tactic script as one command on the header
//! environment, then `#print axioms` on the result. This is the last word on "proved".

use std::time::Duration;

use crate::cached_worker::{tactic_timeout, CachedWorker};
use crate::config::LeanConfig;
use crate::error::Failure;
use crate::outcome::ProofCheck;
use crate::protocol::{error_messages, CommandResponse, Message, Reply, Request, Severity};
use formats::theorems::Theorem;

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
    let name = match theorem.declaration_name() {
        Ok(name) => name,
        Err(reason) => {
            check.errors.push(reason);
            return Ok(check);
        }
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

/// The axioms of `name` from `#print axioms name`. Lean prints one message per constant the
/// identifier resolves to (`elabPrintAxioms`: `cs.forM printAxiomsOf`), so with namespaces
/// open (`open Nat Real`) `Nat.foo` or `Real.foo` can come before `foo` itself. Each reads
/// `'C' depends on axioms: [a, b]` or `'C' does not depend on any axioms` (lean4
/// `src/Lean/Elab/Print.lean`, `printAxiomsOf`). We take the union over every such message
/// (an unrelated constant can only add axioms, never hide one) and fail closed unless one
/// names the theorem itself.
fn axioms_of(messages: &[Message], name: &str) -> Result<Vec<String>, String> {
    let mut axioms: Vec<String> = Vec::new();
    let mut named_itself = false;
    for message in messages.iter().filter(|m| m.severity == Severity::Info) {
        let Some((constant, listed)) = axiom_report(message.data.trim())? else {
            continue;
        };
        named_itself |= is_the_theorem(constant, name);
        for axiom in listed {
            if !axioms.contains(&axiom) {
                axioms.push(axiom);
            }
        }
    }
    if named_itself {
        return Ok(axioms);
    }
    let said: Vec<&str> = messages.iter().map(|m| m.data.as_str()).collect();
    Err(format!("no axiom report for '{name}' (Lean said {said:?})"))
}

/// One `#print axioms` line: the constant and its axioms; None for any other message.
fn axiom_report(data: &str) -> Result<Option<(&str, Vec<String>)>, String> {
    const NONE: &str = "' does not depend on any axioms";
    const SOME: &str = "' depends on axioms: ";
    let Some(quoted) = data.strip_prefix('\'') else {
        return Ok(None);
    };
    if let Some(constant) = quoted.strip_suffix(NONE) {
        return Ok(Some((constant, Vec::new())));
    }
    // Names may hold `'` themselves (`foo'`): split at the last marker.
    let Some(at) = quoted.rfind(SOME) else {
        return Ok(None);
    };
    let list = quoted[at + SOME.len()..].trim();
    let inner = list
        .strip_prefix('[')
        .and_then(|l| l.strip_suffix(']'))
        .ok_or_else(|| format!("unexpected axiom list {list:?}"))?;
    let axioms = inner
        .split(',')
        .map(|a| a.trim().to_owned())
        .filter(|a| !a.is_empty())
        .collect();
    Ok(Some((&quoted[..at], axioms)))
}

/// `#print axioms` names the constant fully: `foo`, `_root_.foo`, or for a `private theorem
/// foo` the mangled `_private.<module>.0.foo`.
fn is_the_theorem(constant: &str, name: &str) -> bool {
    let constant = constant.strip_prefix("_root_.").unwrap_or(constant);
    constant == name
        || (constant.starts_with("_private.")
            && constant
                .strip_suffix(name)
                .is_some_and(|prefix| prefix.ends_with('.')))
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
/// every line indented by two spaces under the statement. Indentation is counted in ASCII
/// spaces and tabs, the only whitespace Lean's tokenizer skips: a line that starts with
/// another space character (U+3000, NBSP) keeps it, and no slice splits a character.
pub(crate) fn indent_script(script: &str) -> String {
    let script = script.trim_matches('\n').trim_end();
    let margin = script
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start_matches([' ', '\t']).len())
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

    /// With `open Nat` Lean reports `Nat.foo` first and then `foo` (one `logInfo` each).
    #[test]
    fn axiom_reports_of_several_constants_are_united_and_must_name_the_theorem() {
        let m = [
            message(Severity::Info, "'Nat.foo' depends on axioms: [sorryAx]"),
            message(Severity::Info, "'foo' depends on axioms: [propext]"),
        ];
        assert_eq!(axioms_of(&m, "foo").unwrap(), vec!["sorryAx", "propext"]);
        let m = [
            message(Severity::Info, "'Real.foo' does not depend on any axioms"),
            message(Severity::Info, "'foo'' depends on axioms: [propext]"),
        ];
        assert_eq!(axioms_of(&m, "foo'").unwrap(), vec!["propext"]);
        // Only another constant's report: fail closed.
        let m = [message(
            Severity::Info,
            "'Nat.foo' does not depend on any axioms",
        )];
        assert!(axioms_of(&m, "foo").is_err());
        let m = [message(
            Severity::Info,
            "'_private.Test.0.foo' does not depend on any axioms",
        )];
        assert!(axioms_of(&m, "foo").is_ok());
        assert!(axioms_of(&m, "oo").is_err());
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
        // Mixed Unicode/ASCII indentation: counted in ASCII bytes, never split mid-character.
        assert_eq!(
            indent_script("  simp\n\u{3000}exact h\n\u{a0} rfl"),
            "    simp\n  \u{3000}exact h\n  \u{a0} rfl"
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

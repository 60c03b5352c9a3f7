//! A theorem as the input JSONL describes it.

use serde::{Deserialize, Serialize};

/// One line of a theorems file: `name`, `formal_statement`, optional `header`; every other
/// field is kept as it came so outputs can carry it along.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Theorem {
    pub name: String,
    /// The statement; ends in `:= by` (possibly followed by whitespace) or has no proof at all.
    pub formal_statement: String,
    /// Replaces `[lean].header` for this theorem when present and non-empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl Theorem {
    /// The statement with any trailing `:= by` (and whitespace) removed, ready to have
    /// ` := by sorry` or a tactic script appended.
    pub fn statement_head(&self) -> &str {
        statement_head(&self.formal_statement)
    }

    /// The declared Lean name (`theorem NAME ...`), for `#print axioms`; Err says why
    /// there is none (an `example`, or no declaration keyword).
    pub fn declaration_name(&self) -> Result<&str, String> {
        declaration_name(&self.formal_statement)
    }

    /// The header this theorem runs under, given the config's default.
    pub fn header_or<'a>(&'a self, default: &'a str) -> &'a str {
        match self.header.as_deref() {
            Some(h) if !h.trim().is_empty() => h,
            _ => default,
        }
    }
}

/// A statement with any trailing `:= by` (and whitespace) removed.
pub fn statement_head(statement: &str) -> &str {
    let s = statement.trim_end();
    let s = s.strip_suffix("by").map(str::trim_end).unwrap_or(s);
    match s.strip_suffix(":=").map(str::trim_end) {
        Some(head) => head,
        None => statement.trim_end(),
    }
}

/// Declaration keywords whose name `#print axioms` can take.
const NAMED_KEYWORDS: [&str; 4] = ["theorem", "lemma", "def", "abbrev"];
/// Modifiers that may come before the keyword (Lean's `declModifiers`).
const MODIFIERS: [&str; 6] = [
    "private",
    "protected",
    "noncomputable",
    "nonrec",
    "unsafe",
    "partial",
];

/// The declared name of a statement (`theorem NAME ...`), for `#print axioms`.
pub fn declaration_name(statement: &str) -> Result<&str, String> {
    declaration_name_span(statement).map(|span| &statement[span])
}

/// The byte range of the declared name. Comments and docstrings (`--`, nested `/- -/`),
/// attributes (`@[simp]`) and modifiers (`private`, `protected`, ...) before the keyword are
/// skipped; universe parameters (`foo.{u}`) are not part of the name.
pub fn declaration_name_span(statement: &str) -> Result<std::ops::Range<usize>, String> {
    let mut at = 0;
    loop {
        at = skip_trivia(statement, at);
        let rest = &statement[at..];
        if rest.starts_with("@[") {
            at += bracket_end(rest).ok_or("an attribute `@[` is never closed")?;
            continue;
        }
        let word_end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        let word = &rest[..word_end];
        at += word_end;
        if MODIFIERS.contains(&word) {
            continue;
        }
        if word == "example" {
            return Err(
                "an `example` has no name, so `#print axioms` cannot check its proof; state it as `theorem NAME ...`".into(),
            );
        }
        if !NAMED_KEYWORDS.contains(&word) {
            let found: String = rest.chars().take(40).collect();
            return Err(format!(
                "expected the statement to start with `theorem NAME` (or `lemma`/`def`/`abbrev`), found {found:?}"
            ));
        }
        break;
    }
    let start = skip_trivia(statement, at);
    let mut end = start;
    let mut chars = statement[start..].char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            // `«...»` quotes a name part that may hold any character.
            '«' => {
                let close = statement[start + i..]
                    .find('»')
                    .ok_or("a name quote `«` is never closed")?;
                end = start + i + close + '»'.len_utf8();
                while chars.peek().is_some_and(|&(j, _)| start + j < end) {
                    chars.next();
                }
            }
            '.' if statement[start + i..].starts_with(".{") => break,
            c if c.is_whitespace() || "({[:⦃⟨".contains(c) => break,
            c => end = start + i + c.len_utf8(),
        }
    }
    if end == start {
        return Err("the declaration has no name".into());
    }
    Ok(start..end)
}

/// Skips whitespace, `--` line comments and nested `/- ... -/` block comments (docstrings
/// included) from byte `at`.
fn skip_trivia(text: &str, mut at: usize) -> usize {
    loop {
        let rest = &text[at..];
        let trimmed = rest.trim_start();
        at += rest.len() - trimmed.len();
        if trimmed.starts_with("--") {
            at += trimmed.find('\n').unwrap_or(trimmed.len());
        } else if trimmed.starts_with("/-") {
            let mut depth = 0usize;
            let mut i = 0;
            let bytes = trimmed.as_bytes();
            while i < bytes.len() {
                if bytes[i..].starts_with(b"/-") {
                    depth += 1;
                    i += 2;
                } else if bytes[i..].starts_with(b"-/") {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            at += i;
        } else {
            return at;
        }
    }
}

/// Length of `@[ ... ]` at the start of `text`, nested brackets included.
fn bracket_end(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (i, c) in text.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn theorem(statement: &str) -> Theorem {
        Theorem {
            name: "t".into(),
            formal_statement: statement.into(),
            header: None,
            extra: Default::default(),
        }
    }

    #[test]
    fn declaration_name_follows_the_keyword() {
        let name = |s| declaration_name(s).map_err(|e| e.to_string());
        assert_eq!(name("theorem foo (x : Nat) : x = x := by"), Ok("foo"));
        assert_eq!(name("@[simp] lemma bar: True"), Ok("bar"));
        assert_eq!(name("theorem mathd_1{x : Nat} : x = x"), Ok("mathd_1"));
        assert_eq!(name("theorem foo.{u} (α : Sort u) : True"), Ok("foo"));
        assert_eq!(name("theorem Nat.foo' : True"), Ok("Nat.foo'"));
        assert_eq!(name("theorem «my thm» : True"), Ok("«my thm»"));
        assert_eq!(
            name("/-- The theorem is: `theorem wrong`. -/\n@[simp, norm_num [a]]\nprotected theorem right : True"),
            Ok("right")
        );
        assert_eq!(
            name("-- lemma wrong\n/- nested /- theorem wrong -/ -/ private theorem right : True"),
            Ok("right")
        );
        assert!(name("example : True := by")
            .unwrap_err()
            .contains("`example` has no name"));
        assert!(name("instance : Foo := by")
            .unwrap_err()
            .contains("found \"instance"));
        // Multi-byte text around the name never splits a character.
        assert_eq!(name("/- é -/ theorem é⦃x : ℕ⦄ : True"), Ok("é"));
    }

    #[test]
    fn statement_head_strips_by() {
        assert_eq!(
            theorem("theorem t : 1 = 1 := by\n").statement_head(),
            "theorem t : 1 = 1"
        );
        assert_eq!(
            theorem("theorem t : 1 = 1 :=  by  ").statement_head(),
            "theorem t : 1 = 1"
        );
        assert_eq!(
            theorem("theorem t : 1 = 1").statement_head(),
            "theorem t : 1 = 1"
        );
        // `by` as the end of an identifier is not the proof keyword's position check, but a
        // statement never ends in a bare identifier followed by nothing; keep it unchanged.
        assert_eq!(
            theorem("theorem t : P by").statement_head(),
            "theorem t : P by"
        );
    }
}

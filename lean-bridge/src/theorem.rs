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

    /// The declared Lean name (`theorem NAME ...`), for `#print axioms`.
    pub fn declaration_name(&self) -> Option<&str> {
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

/// The name after the first `theorem` or `lemma` keyword of a statement.
pub fn declaration_name(statement: &str) -> Option<&str> {
    let mut words = statement.split_whitespace();
    words.find(|w| matches!(*w, "theorem" | "lemma"))?;
    let word = words.next()?;
    let end = word.find(['(', '{', '[', ':', '⦃']).unwrap_or(word.len());
    Some(&word[..end]).filter(|name| !name.is_empty())
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
        assert_eq!(
            declaration_name("theorem foo (x : Nat) : x = x := by"),
            Some("foo")
        );
        assert_eq!(declaration_name("@[simp] lemma bar: True"), Some("bar"));
        assert_eq!(
            declaration_name("theorem mathd_1{x : Nat} : x = x"),
            Some("mathd_1")
        );
        assert_eq!(declaration_name("example : True := by"), None);
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

//! The theorems file: one JSON line per theorem (`name`, `formal_statement`, optional
//! `header`), read in file order, split into shards and capped. The sweep, `merge` and the
//! simulated REPL all read it, so it lives here.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

#[derive(Debug, thiserror::Error)]
pub enum TheoremsError {
    #[error("cannot read theorems {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Parse {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("invalid shard `{0}`: expected I/N with 0 <= I < N")]
    Shard(String),
}

/// Every theorem of a JSONL file, in file order. Blank lines are skipped; a malformed line,
/// or a name seen before, is an error naming the file and line.
pub fn read_theorems(path: &Path) -> Result<Vec<Theorem>, TheoremsError> {
    let text = std::fs::read_to_string(path).map_err(|source| TheoremsError::Read {
        path: path.to_owned(),
        source,
    })?;
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut theorems = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let parse = |message: String| TheoremsError::Parse {
            path: path.to_owned(),
            line: line_no,
            message,
        };
        let theorem: Theorem = serde_json::from_str(line).map_err(|e| parse(e.to_string()))?;
        if let Some(first) = seen.insert(theorem.name.clone(), line_no) {
            return Err(parse(format!(
                "theorem `{}` already appears on line {first}",
                theorem.name
            )));
        }
        theorems.push(theorem);
    }
    Ok(theorems)
}

/// `--shard I/N`: machine `I` of `N` takes the theorems whose position in the file is `I`
/// modulo `N`. Every machine must read the same file; then the shards cover it exactly once,
/// with sizes differing by at most one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl FromStr for Shard {
    type Err = TheoremsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || TheoremsError::Shard(s.to_owned());
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let index: usize = i.trim().parse().map_err(|_| bad())?;
        let count: usize = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// This shard's theorems (all without a shard), then the first `max` of them.
pub fn select(theorems: Vec<Theorem>, shard: Option<Shard>, max: Option<usize>) -> Vec<Theorem> {
    theorems
        .into_iter()
        .enumerate()
        .filter(|(i, _)| shard.is_none_or(|s| i % s.count == s.index))
        .map(|(_, t)| t)
        .take(max.unwrap_or(usize::MAX))
        .collect()
}

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
    use std::io::Write;

    fn file(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    fn line(name: &str) -> String {
        format!(
            r#"{{"name": "{name}", "formal_statement": "theorem {name} : True := by", "split": "test"}}"#
        )
    }

    #[test]
    fn reads_jsonl_keeping_extra_fields() {
        let f = file(&format!("{}\n\n{}\n", line("a"), line("b")));
        let t = read_theorems(f.path()).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t[1].name, "b");
        assert_eq!(t[0].extra["split"], "test");
    }

    #[test]
    fn malformed_or_duplicate_lines_name_the_line() {
        let f = file(&format!("{}\n{{\"name\": 3}}\n", line("a")));
        let e = read_theorems(f.path()).unwrap_err().to_string();
        assert!(e.contains(&format!("{}:2:", f.path().display())), "{e}");
        let f = file(&format!("{}\n{}\n{}\n", line("a"), line("b"), line("a")));
        let e = read_theorems(f.path()).unwrap_err().to_string();
        assert!(e.contains(":3:") && e.contains("line 1"), "{e}");
    }

    #[test]
    fn shards_cover_the_set_exactly_once() {
        let all: Vec<Theorem> = (0..10)
            .map(|i| serde_json::from_str(&line(&format!("t{i}"))).unwrap())
            .collect();
        let mut names: Vec<String> = (0..3)
            .flat_map(|i| {
                let shard = format!("{i}/3").parse::<Shard>().unwrap();
                select(all.clone(), Some(shard), None)
            })
            .map(|t| t.name)
            .collect();
        names.sort();
        let mut expected: Vec<String> = all.iter().map(|t| t.name.clone()).collect();
        expected.sort();
        assert_eq!(names, expected);
        assert_eq!(select(all.clone(), None, Some(4)).len(), 4);
        assert!("3/3".parse::<Shard>().is_err());
        assert!("1-3".parse::<Shard>().is_err());
    }

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

//! The theorems a sweep runs: read from JSONL, split into shards, capped.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use lean_bridge::Theorem;

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
}

//! `DIR/results.jsonl`: one line per theorem, appended and flushed as each finishes, so a
//! killed sweep loses nothing already reported and `--resume` knows what is done.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::stats::{SearchStats, TimeAccount};

pub const RESULTS_FILE: &str = "results.jsonl";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SearchStatus {
    Proved,
    NodeBudget,
    Timeout,
    /// The frontier ran dry.
    Exhausted,
    /// The theorem could not be searched; `error` says why and `error_kind` whose fault it was.
    Error,
}

impl SearchStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SearchStatus::Proved => "proved",
            SearchStatus::NodeBudget => "node_budget",
            SearchStatus::Timeout => "timeout",
            SearchStatus::Exhausted => "exhausted",
            SearchStatus::Error => "error",
        }
    }
}

/// Whose fault an `error` was: Lean rejecting the statement is a fact about the theorem (a
/// re-run gives the same answer), anything else is the infrastructure's (a dead server, a
/// crashing REPL) and worth another run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    Statement,
    Infrastructure,
}

/// One theorem's result line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TheoremResult {
    pub name: String,
    pub proved: bool,
    pub status: SearchStatus,
    /// Why the theorem ended in `error`.
    #[serde(default)]
    pub error: Option<String>,
    /// Whose fault the error was; `--resume` re-runs only infrastructure errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<ErrorKind>,
    /// The verified proof's tactics, one per step.
    #[serde(default)]
    pub proof_tactics: Vec<String>,
    /// The full checked text (statement `:= by` and the script).
    #[serde(default)]
    pub proof: Option<String>,
    /// Axioms the proof depends on.
    #[serde(default)]
    pub axioms: Vec<String>,
    /// When the line was written (Unix ms); with `wall_ms` it places the theorem in time.
    #[serde(default)]
    pub finished_unix_ms: u64,
    #[serde(flatten)]
    pub stats: SearchStats,
    #[serde(flatten)]
    pub time: TimeAccount,
}

#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    #[error("results file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("results file {path}:{line}: {message}")]
    Parse {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

/// Every result line of `path`, in order. A last line without its newline that does not parse
/// is what a killed sweep leaves: it is dropped with a warning. Any other bad line is an error.
pub fn read_results(path: &Path) -> Result<Vec<TheoremResult>, ResultsError> {
    Ok(read_with_tail(path)?.0)
}

/// The results and the byte length of the intact part of the file.
fn read_with_tail(path: &Path) -> Result<(Vec<TheoremResult>, usize), ResultsError> {
    let text = std::fs::read_to_string(path).map_err(|source| ResultsError::Io {
        path: path.to_owned(),
        source,
    })?;
    let mut results = Vec::new();
    let mut offset = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let complete = line.ends_with('\n');
        if line.trim().is_empty() {
            offset += line.len();
            continue;
        }
        match serde_json::from_str::<TheoremResult>(line) {
            Ok(r) => results.push(r),
            Err(e) if !complete => {
                tracing::warn!(
                    "{}:{}: dropping a torn last line (a sweep was killed mid-write): {e}",
                    path.display(),
                    i + 1
                );
                break;
            }
            Err(e) => {
                return Err(ResultsError::Parse {
                    path: path.to_owned(),
                    line: i + 1,
                    message: e.to_string(),
                })
            }
        }
        offset += line.len();
    }
    Ok((results, offset))
}

/// The last line per theorem (a resumed sweep appends new lines for re-run theorems).
pub fn latest_by_name(results: Vec<TheoremResult>) -> Vec<TheoremResult> {
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut latest: Vec<TheoremResult> = Vec::new();
    for r in results {
        match index.get(&r.name) {
            Some(&i) => latest[i] = r,
            None => {
                index.insert(r.name.clone(), latest.len());
                latest.push(r);
            }
        }
    }
    latest
}

/// The append-only writer.
pub struct ResultsWriter {
    path: PathBuf,
    file: File,
}

impl ResultsWriter {
    /// Opens a new results file: `path` must not exist yet or be empty, so a finished sweep
    /// is never silently extended.
    pub fn create(path: &Path) -> Result<Self, ResultsError> {
        if path.exists() && !read_results(path)?.is_empty() {
            return Err(ResultsError::Io {
                path: path.to_owned(),
                source: std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "already holds results: pass --resume to continue that sweep, or choose another --out",
                ),
            });
        }
        Self::append_to(path)
    }

    /// Continues a results file: keeps the latest line of each theorem unless `rerun` says it
    /// is searched again, and returns the kept lines. When anything is dropped (a re-run
    /// theorem's old line, an older line of the same theorem, a torn last line), the file is
    /// rewritten once, through a temporary file renamed into place, so it holds exactly one
    /// line per theorem and a kill mid-way leaves the old file whole.
    pub fn resume(
        path: &Path,
        rerun: impl Fn(&TheoremResult) -> bool,
    ) -> Result<(Self, Vec<TheoremResult>), ResultsError> {
        let io = |source| ResultsError::Io {
            path: path.to_owned(),
            source,
        };
        let (all, intact) = match read_with_tail(path) {
            Ok(found) => found,
            Err(ResultsError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                (Vec::new(), 0)
            }
            Err(e) => return Err(e),
        };
        let lines = all.len();
        let kept: Vec<TheoremResult> = latest_by_name(all)
            .into_iter()
            .filter(|r| !rerun(r))
            .collect();
        let on_disk = std::fs::metadata(path).map_or(0, |m| m.len() as usize);
        if kept.len() != lines || intact != on_disk {
            let tmp = path.with_extension("jsonl.tmp");
            let mut text = String::new();
            for r in &kept {
                text.push_str(&serde_json::to_string(r).expect("results serialise"));
                text.push('\n');
            }
            std::fs::write(&tmp, text).map_err(io)?;
            std::fs::rename(&tmp, path).map_err(io)?;
        }
        Ok((Self::append_to(path)?, kept))
    }

    fn append_to(path: &Path) -> Result<Self, ResultsError> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|source| ResultsError::Io {
                path: path.to_owned(),
                source,
            })?;
        Ok(Self {
            path: path.to_owned(),
            file,
        })
    }

    /// Appends one line and flushes it to the OS, so a kill after this returns keeps it.
    pub fn append(&mut self, result: &TheoremResult) -> Result<(), ResultsError> {
        let mut line = serde_json::to_string(result).expect("results serialise");
        line.push('\n');
        self.file
            .write_all(line.as_bytes())
            .and_then(|()| self.file.flush())
            .map_err(|source| ResultsError::Io {
                path: self.path.clone(),
                source,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(name: &str, status: SearchStatus) -> TheoremResult {
        TheoremResult {
            name: name.into(),
            proved: status == SearchStatus::Proved,
            status,
            error: None,
            error_kind: None,
            proof_tactics: vec![],
            proof: None,
            axioms: vec![],
            finished_unix_ms: 0,
            stats: SearchStats {
                nodes_expanded: 3,
                ..SearchStats::default()
            },
            time: TimeAccount {
                wall_ms: 12.5,
                ..TimeAccount::default()
            },
        }
    }

    #[test]
    fn lines_are_flat_and_round_trip() {
        let mut r = result("a", SearchStatus::NodeBudget);
        r.time.gen_latency.record(1800.0);
        let json: serde_json::Value = serde_json::to_value(&r).unwrap();
        assert_eq!(json["status"], "node_budget");
        assert_eq!(json["nodes_expanded"], 3);
        assert_eq!(json["wall_ms"], 12.5);
        assert_eq!(serde_json::from_value::<TheoremResult>(json).unwrap(), r);
    }

    #[test]
    fn resume_keeps_one_line_per_theorem_and_drops_a_torn_last_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results.jsonl");
        let mut w = ResultsWriter::create(&path).unwrap();
        w.append(&result("a", SearchStatus::Proved)).unwrap();
        w.append(&result("b", SearchStatus::Error)).unwrap();
        w.append(&result("c", SearchStatus::Timeout)).unwrap();
        w.append(&result("c", SearchStatus::Exhausted)).unwrap();
        drop(w);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(br#"{"name": "d", "pro"#).unwrap();
        drop(f);

        assert_eq!(read_results(&path).unwrap().len(), 4);
        assert!(ResultsWriter::create(&path).is_err(), "no silent extension");
        let (mut w, kept) =
            ResultsWriter::resume(&path, |r| r.status == SearchStatus::Error).unwrap();
        let names: Vec<_> = kept.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["a", "c"]);
        assert_eq!(kept[1].status, SearchStatus::Exhausted);
        // The file already says exactly that, before anything new is appended.
        assert_eq!(read_results(&path).unwrap(), kept);
        w.append(&result("b", SearchStatus::NodeBudget)).unwrap();
        let all = read_results(&path).unwrap();
        let names: Vec<_> = all.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["a", "c", "b"]);
        assert!(!path.with_extension("jsonl.tmp").exists());
    }

    #[test]
    fn resume_of_a_missing_file_starts_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results.jsonl");
        let (mut w, kept) = ResultsWriter::resume(&path, |_| false).unwrap();
        assert!(kept.is_empty());
        w.append(&result("a", SearchStatus::Proved)).unwrap();
        assert_eq!(read_results(&path).unwrap().len(), 1);
    }

    #[test]
    fn a_bad_middle_line_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results.jsonl");
        std::fs::write(&path, "not json\n{}\n").unwrap();
        let e = read_results(&path).unwrap_err().to_string();
        assert!(e.contains("results.jsonl:1:"), "{e}");
    }
}

//! A run folder's record of its runs: `DIR/runs.jsonl` (one line per run of `stepwise sweep`
//! over the folder, appended as each run ends) and `DIR/config.json` (the resolved config the
//! sweep ran with). The sweep writes them and the reports read them.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::append::append_text;
use crate::utilisation::UrlUtilisation;

pub const RUNS_FILE: &str = "runs.jsonl";
pub const CONFIG_FILE: &str = "config.json";

#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct RunFileError {
    pub path: PathBuf,
    pub message: String,
}

/// One run of `stepwise sweep` over a directory (a resumed sweep has several), appended to
/// `runs.jsonl` when the run ends: the run's own wall time and what each generate server did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub started_unix_ms: u64,
    pub wall_ms: f64,
    pub searched: usize,
    pub stopped: bool,
    /// The policy client's request timeline over this run, per URL.
    pub generate_servers: Vec<UrlUtilisation>,
}

/// Appends one run's record to `DIR/runs.jsonl`.
pub fn append_run(dir: &Path, run: &RunRecord) -> Result<(), RunFileError> {
    let path = dir.join(RUNS_FILE);
    let line = serde_json::to_string(run).expect("run record serialises") + "\n";
    append_text(&path, &line).map_err(|e| RunFileError {
        path,
        message: e.to_string(),
    })
}

/// `DIR/runs.jsonl` (none if absent); a line that does not parse is skipped with a warning
/// (the record is informational: a bad one must not hide the results).
pub fn read_runs(dir: &Path) -> Result<Vec<RunRecord>, RunFileError> {
    let path = dir.join(RUNS_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(RunFileError {
                path,
                message: e.to_string(),
            })
        }
    };
    Ok(text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .filter_map(|(i, l)| match serde_json::from_str(l) {
            Ok(run) => Some(run),
            Err(e) => {
                tracing::warn!(
                    "{}:{}: skipping a bad run record: {e}",
                    path.display(),
                    i + 1
                );
                None
            }
        })
        .collect())
}

/// `DIR/config.json`, if the sweep wrote one.
pub fn read_config(dir: &Path) -> Result<Option<serde_json::Value>, RunFileError> {
    let path = dir.join(CONFIG_FILE);
    if !path.exists() {
        return Ok(None);
    }
    let err = |message: String| RunFileError {
        path: path.clone(),
        message,
    };
    let text = std::fs::read_to_string(&path).map_err(|e| err(e.to_string()))?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| err(e.to_string()))
}

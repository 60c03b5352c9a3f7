//! What a running sweep publishes beside `results.jsonl` for readers in other shells or on
//! other nodes (`stepwise watch`, `report.html`): `DIR/progress.json`, rewritten atomically
//! every few seconds, and `DIR/generate_timeline.jsonl`, the policy client's request timeline
//! as one line per interval, appended by every run of the sweep. The sweep writes them and the
//! run-folder readers read them, so the files' types and their reading and writing live here.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::append::{append_text, write_atomically};
use crate::utilisation::UrlUtilisation;

pub const PROGRESS_FILE: &str = "progress.json";
pub const GENERATE_TIMELINE_FILE: &str = "generate_timeline.jsonl";

/// How many intervals at the start of each run carry their [`TimelineSample::in_flight_steps`]:
/// enough to draw a short sweep's load exactly, few enough that a long sweep's memory and file
/// do not grow with it. A run with at most this many timeline lines has all its steps.
pub const STEPPED_INTERVALS: usize = 32;

/// One interval of the policy client's request timeline: what each generate server did in it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineSample {
    /// The run this interval belongs to (`runs.jsonl`'s `started_unix_ms`).
    pub run_started_unix_ms: u64,
    /// The interval's end.
    pub unix_ms: u64,
    pub interval_ms: f64,
    /// Each server's counters over the interval (`prompt_ms / interval_ms` = mean prompts in
    /// flight, `busy_ms / interval_ms` = busy share).
    pub servers: Vec<UrlUtilisation>,
    /// In a run's first [`STEPPED_INTERVALS`] intervals, every change of a server's requests in
    /// flight, oldest first; the run's first line starts with each server's level at the start.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub in_flight_steps: Vec<InFlightStep>,
}

/// A server's requests in flight just after one began or ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InFlightStep {
    pub unix_ms: u64,
    pub url: String,
    pub requests: u64,
    /// Prompts (samples) in those requests.
    pub prompts: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SweepState {
    Running,
    /// A stop was requested: the theorems in flight finish, nothing new starts.
    Stopping,
    Finished,
    /// Stopped before every theorem was searched; `--resume` continues.
    Stopped,
}

impl SweepState {
    pub fn ended(self) -> bool {
        matches!(self, SweepState::Finished | SweepState::Stopped)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InFlight {
    pub name: String,
    pub started_unix_ms: u64,
}

/// `DIR/progress.json`: what `watch` needs that `results.jsonl` does not hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub state: SweepState,
    /// When this file was written; a running sweep that stops updating it was killed.
    pub updated_unix_ms: u64,
    pub interval_ms: u64,
    pub run_started_unix_ms: u64,
    /// Theorems in the input (this shard).
    pub total: usize,
    /// Theorems earlier runs had finished (`--resume`).
    pub skipped: usize,
    /// Oldest first.
    pub in_flight: Vec<InFlight>,
    /// Each generate server over the last minute (or since the run started, if sooner).
    pub generate_last_minute: Vec<UrlUtilisation>,
    pub generate_window_ms: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum ProgressError {
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("{path}:{line}: {message}")]
    Parse {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn file_error(path: &Path, e: impl std::fmt::Display) -> ProgressError {
    ProgressError::File {
        path: path.to_owned(),
        message: e.to_string(),
    }
}

/// Appends one interval to `DIR/generate_timeline.jsonl`.
pub fn append_timeline(dir: &Path, sample: &TimelineSample) -> Result<(), ProgressError> {
    let path = dir.join(GENERATE_TIMELINE_FILE);
    let line = serde_json::to_string(sample).expect("timeline serialises") + "\n";
    append_text(&path, &line).map_err(|e| file_error(&path, e))
}

/// Rewrites `DIR/progress.json` atomically.
pub fn write_progress(dir: &Path, progress: &Progress) -> Result<(), ProgressError> {
    let path = dir.join(PROGRESS_FILE);
    write_atomically(
        &path,
        &(serde_json::to_string_pretty(progress).expect("progress serialises") + "\n"),
    )
    .map_err(|e| file_error(&path, e))
}

/// `DIR/progress.json`, if the sweep wrote one.
pub fn read_progress(dir: &Path) -> Result<Option<Progress>, ProgressError> {
    let path = dir.join(PROGRESS_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| file_error(&path, e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(file_error(&path, e)),
    }
}

/// Every line of `DIR/generate_timeline.jsonl` (none if absent). A torn last line (a killed
/// sweep) is dropped; any other bad line is an error naming it.
pub fn read_timeline(dir: &Path) -> Result<Vec<TimelineSample>, ProgressError> {
    let path = dir.join(GENERATE_TIMELINE_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(file_error(&path, e)),
    };
    let mut samples = Vec::new();
    for (i, line) in text.split_inclusive('\n').enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(line) {
            Ok(sample) => samples.push(sample),
            Err(_) if !line.ends_with('\n') => break,
            Err(e) => {
                return Err(ProgressError::Parse {
                    path,
                    line: i + 1,
                    message: e.to_string(),
                })
            }
        }
    }
    Ok(samples)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_torn_last_timeline_line_is_dropped_and_a_bad_one_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(GENERATE_TIMELINE_FILE);
        let good = serde_json::to_string(&TimelineSample {
            run_started_unix_ms: 1,
            unix_ms: 2,
            interval_ms: 2000.0,
            servers: vec![UrlUtilisation {
                url: "http://gpu0".into(),
                requests: 1,
                ..UrlUtilisation::default()
            }],
            in_flight_steps: Vec::new(),
        })
        .unwrap();
        std::fs::write(&path, format!("{good}\n{{\"run_st")).unwrap();
        assert_eq!(read_timeline(dir.path()).unwrap().len(), 1);
        std::fs::write(&path, format!("{good}\nnope\n{good}\n")).unwrap();
        let e = read_timeline(dir.path()).unwrap_err().to_string();
        assert!(e.contains("generate_timeline.jsonl:2:"), "{e}");
    }

    #[test]
    fn a_line_from_before_in_flight_steps_still_reads_and_new_lines_carry_them_only_when_some() {
        let dir = tempfile::tempdir().unwrap();
        let old = r#"{"run_started_unix_ms":1,"unix_ms":2,"interval_ms":2000.0,"servers":[{"url":"http://gpu0","requests":1,"prompts":8,"busy_ms":5.0,"prompt_ms":40.0}]}"#;
        let mut stepped: TimelineSample = serde_json::from_str(old).unwrap();
        assert!(stepped.in_flight_steps.is_empty());
        assert_eq!(serde_json::to_string(&stepped).unwrap(), old);
        stepped.in_flight_steps = vec![InFlightStep {
            unix_ms: 2,
            url: "http://gpu0".into(),
            requests: 1,
            prompts: 8,
        }];
        let stepped_line = serde_json::to_string(&stepped).unwrap();
        std::fs::write(
            dir.path().join(GENERATE_TIMELINE_FILE),
            format!("{stepped_line}\n{old}\n"),
        )
        .unwrap();
        let read = read_timeline(dir.path()).unwrap();
        assert_eq!(read[0], stepped);
        assert!(read[1].in_flight_steps.is_empty());
    }
}

//! What `stepwise watch` shows of a sweep, read from its directory's files only (so it works
//! from another shell, or another node on a shared filesystem): `results.jsonl`, followed as
//! lines are appended, and `progress.json` for what only the running sweep knows.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use formats::progress::{read_progress, unix_ms, Progress, ProgressError, SweepState};
use formats::results::{ResultsError, TheoremResult, RESULTS_FILE};

use crate::report_html::{phase_times, PHASES};

/// How many of the latest errors the view keeps.
const LAST_ERRORS: usize = 5;

/// Reads the lines appended to a results file since the last call. A line without its
/// newline yet is left for the next call; a file that shrank (a new sweep, or `--resume`
/// cutting a torn line) is read again from the start.
#[derive(Debug)]
pub struct ResultsFollower {
    path: PathBuf,
    /// Bytes of complete lines consumed so far.
    offset: u64,
    lines: usize,
}

/// What one [`ResultsFollower::poll`] found.
#[derive(Debug, Default)]
pub struct Appended {
    /// The file was replaced or cut: forget what earlier polls returned.
    pub restarted: bool,
    pub results: Vec<TheoremResult>,
}

impl ResultsFollower {
    pub fn new(path: &Path) -> Self {
        Self {
            path: path.to_owned(),
            offset: 0,
            lines: 0,
        }
    }

    pub fn poll(&mut self) -> Result<Appended, ResultsError> {
        let io = |source| ResultsError::Io {
            path: self.path.clone(),
            source,
        };
        let mut file = match std::fs::File::open(&self.path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Appended::default()),
            Err(e) => return Err(io(e)),
        };
        let len = file.metadata().map_err(io)?.len();
        let mut appended = Appended::default();
        if len < self.offset {
            appended.restarted = true;
            self.offset = 0;
            self.lines = 0;
        }
        file.seek(SeekFrom::Start(self.offset)).map_err(io)?;
        let mut bytes = Vec::new();
        file.take(len - self.offset)
            .read_to_end(&mut bytes)
            .map_err(io)?;
        let complete = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        for line in bytes[..complete].split_inclusive(|b| *b == b'\n') {
            self.lines += 1;
            let text = String::from_utf8_lossy(line);
            if text.trim().is_empty() {
                continue;
            }
            let result = serde_json::from_str(&text).map_err(|e| ResultsError::Parse {
                path: self.path.clone(),
                line: self.lines,
                message: e.to_string(),
            })?;
            appended.results.push(result);
        }
        self.offset += complete as u64;
        Ok(appended)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error(transparent)]
    Results(#[from] ResultsError),
    #[error(transparent)]
    Progress(#[from] ProgressError),
}

/// Whether the sweep is still going, as far as its files tell.
#[derive(Debug, Clone, PartialEq)]
pub enum Liveness {
    /// `progress.json` was rewritten recently.
    Running(SweepState),
    /// The sweep wrote its final `progress.json`.
    Ended(SweepState),
    /// `progress.json` says running but has not been rewritten for this many seconds: the
    /// sweep was killed, or its node lost the shared filesystem.
    Silent(f64),
    /// No `progress.json`: a sweep from before `watch`, or one not started yet.
    Unknown,
}

/// Everything one frame of `watch` shows.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchSnapshot {
    pub dir: String,
    pub liveness: Liveness,
    /// Theorems in the sweep's input, when `progress.json` says.
    pub total: Option<usize>,
    /// Theorems with a result (the latest line per theorem).
    pub finished: usize,
    pub proved: usize,
    pub errors: usize,
    /// Theorems per hour over the current run (or over the results' span without
    /// `progress.json`).
    pub per_hour: Option<f64>,
    pub eta_s: Option<f64>,
    /// Each phase's share of the summed wall time of the finished theorems.
    pub time_shares: Vec<(&'static str, f64)>,
    /// Per generate server over the last minute: (url, busy share, mean prompts in flight).
    pub generate: Vec<(String, f64, f64)>,
    /// Theorems running now, the longest-running first, with seconds so far.
    pub in_flight: Vec<(String, f64)>,
    /// The latest errors, newest first: (theorem, first line of the error).
    pub last_errors: Vec<(String, String)>,
}

/// A sweep directory being followed.
#[derive(Debug)]
pub struct SweepWatch {
    dir: PathBuf,
    follower: ResultsFollower,
    index: HashMap<String, usize>,
    latest: Vec<TheoremResult>,
    /// Every error line in file order (a re-run theorem's old error stays an event).
    errors_seen: Vec<(String, String)>,
    progress: Option<Progress>,
}

impl SweepWatch {
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_owned(),
            follower: ResultsFollower::new(&dir.join(RESULTS_FILE)),
            index: HashMap::new(),
            latest: Vec::new(),
            errors_seen: Vec::new(),
            progress: None,
        }
    }

    /// Reads what was appended and the current `progress.json`.
    pub fn refresh(&mut self) -> Result<(), WatchError> {
        let appended = self.follower.poll()?;
        if appended.restarted {
            self.index.clear();
            self.latest.clear();
            self.errors_seen.clear();
        }
        for r in appended.results {
            if let Some(error) = &r.error {
                let first = error.lines().next().unwrap_or("").to_owned();
                self.errors_seen.push((r.name.clone(), first));
            }
            match self.index.get(&r.name) {
                Some(&i) => self.latest[i] = r,
                None => {
                    self.index.insert(r.name.clone(), self.latest.len());
                    self.latest.push(r);
                }
            }
        }
        self.progress = read_progress(&self.dir)?;
        Ok(())
    }

    pub fn snapshot(&self, now_unix_ms: u64) -> WatchSnapshot {
        let finished = self.latest.len();
        let proved = self.latest.iter().filter(|r| r.proved).count();
        let errors = self.latest.iter().filter(|r| r.error.is_some()).count();
        let p = self.progress.as_ref();
        let liveness = match p {
            None => Liveness::Unknown,
            Some(p) if p.state.ended() => Liveness::Ended(p.state),
            Some(p) => {
                let silent_ms = now_unix_ms.saturating_sub(p.updated_unix_ms);
                // Three missed rewrites, and never less than 10 s (a busy shared filesystem).
                if silent_ms > (3 * p.interval_ms).max(10_000) {
                    Liveness::Silent(silent_ms as f64 / 1000.0)
                } else {
                    Liveness::Running(p.state)
                }
            }
        };
        let (per_hour, eta_s) = self.rate(now_unix_ms);
        let wall: f64 = self.latest.iter().map(|r| r.time.wall_ms).sum();
        let time_shares = PHASES
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let total: f64 = self.latest.iter().map(|r| phase_times(&r.time)[i]).sum();
                (*name, if wall > 0.0 { total / wall } else { 0.0 })
            })
            .collect();
        let generate = p.map_or_else(Vec::new, |p| {
            p.generate_last_minute
                .iter()
                .map(|u| {
                    (
                        u.url.clone(),
                        u.busy_share(p.generate_window_ms),
                        u.mean_prompts_in_flight(p.generate_window_ms),
                    )
                })
                .collect()
        });
        let in_flight = match (p, &liveness) {
            (Some(p), Liveness::Running(_)) => p
                .in_flight
                .iter()
                .map(|t| {
                    let s = now_unix_ms.saturating_sub(t.started_unix_ms) as f64 / 1000.0;
                    (t.name.clone(), s)
                })
                .collect(),
            _ => Vec::new(),
        };
        WatchSnapshot {
            dir: self.dir.display().to_string(),
            liveness,
            total: p.map(|p| p.total),
            finished,
            proved,
            errors,
            per_hour,
            eta_s,
            time_shares,
            generate,
            in_flight,
            last_errors: self
                .errors_seen
                .iter()
                .rev()
                .take(LAST_ERRORS)
                .cloned()
                .collect(),
        }
    }

    /// Theorems per hour and seconds left: over the current run when `progress.json` says
    /// when it started (earlier runs' theorems are not this run's speed), else over the span
    /// of the results.
    fn rate(&self, now_unix_ms: u64) -> (Option<f64>, Option<f64>) {
        let (done, span_ms) = match &self.progress {
            Some(p) => {
                let end = if p.state.ended() {
                    p.updated_unix_ms
                } else {
                    now_unix_ms
                };
                let done = self
                    .latest
                    .iter()
                    .filter(|r| r.finished_unix_ms >= p.run_started_unix_ms)
                    .count();
                (done, end.saturating_sub(p.run_started_unix_ms) as f64)
            }
            None => {
                let start = self
                    .latest
                    .iter()
                    .map(|r| r.finished_unix_ms as f64 - r.time.wall_ms)
                    .fold(f64::INFINITY, f64::min);
                let end = self
                    .latest
                    .iter()
                    .map(|r| r.finished_unix_ms as f64)
                    .fold(0.0, f64::max);
                (self.latest.len(), (end - start).max(0.0))
            }
        };
        if done == 0 || span_ms <= 0.0 {
            return (None, None);
        }
        let per_hour = done as f64 * 3_600_000.0 / span_ms;
        let eta = self.progress.as_ref().and_then(|p| {
            let left = p.total.saturating_sub(self.latest.len());
            (!p.state.ended()).then(|| left as f64 * 3600.0 / per_hour)
        });
        (Some(per_hour), eta)
    }
}

/// The snapshot of `dir` now; for one-shot readers.
pub fn snapshot_of(dir: &Path) -> Result<WatchSnapshot, WatchError> {
    let mut watch = SweepWatch::new(dir);
    watch.refresh()?;
    Ok(watch.snapshot(unix_ms()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::summary::tests::result;
    use formats::results::SearchStatus;

    fn line(name: &str, status: SearchStatus, error: Option<&str>) -> String {
        serde_json::to_string(&result(name, status, error)).unwrap() + "\n"
    }

    fn append(path: &Path, text: &str) {
        formats::append::append_text(path, text).unwrap();
    }

    #[test]
    fn follows_appended_lines_and_waits_for_a_torn_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(RESULTS_FILE);
        let mut follower = ResultsFollower::new(&path);
        assert!(follower.poll().unwrap().results.is_empty(), "no file yet");
        append(&path, &line("a", SearchStatus::Proved, None));
        let a = line("b", SearchStatus::Error, Some("boom"));
        let (head, tail) = a.split_at(20);
        append(&path, head);
        let names = |r: Appended| r.results.into_iter().map(|r| r.name).collect::<Vec<_>>();
        assert_eq!(names(follower.poll().unwrap()), ["a"]);
        assert!(follower.poll().unwrap().results.is_empty());
        append(&path, tail);
        assert_eq!(names(follower.poll().unwrap()), ["b"]);
        // A new sweep in the same place: the file starts again.
        std::fs::write(&path, line("c", SearchStatus::Proved, None)).unwrap();
        let again = follower.poll().unwrap();
        assert!(again.restarted);
        assert_eq!(names(again), ["c"]);
        append(&path, "not json\n");
        let e = follower.poll().unwrap_err().to_string();
        assert!(e.contains("results.jsonl:2:"), "{e}");
    }

    #[test]
    fn counts_the_latest_line_per_theorem_and_keeps_errors_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(RESULTS_FILE);
        append(
            &path,
            &line("a", SearchStatus::Error, Some("REPL died\ndetail")),
        );
        append(&path, &line("b", SearchStatus::Proved, None));
        let mut watch = SweepWatch::new(dir.path());
        watch.refresh().unwrap();
        let s = watch.snapshot(20_000);
        assert_eq!((s.finished, s.proved, s.errors), (2, 1, 1));
        assert_eq!(s.liveness, Liveness::Unknown);
        // Two theorems from 9 s to 10 s: 7200 per hour.
        assert_eq!(s.per_hour, Some(7200.0));
        assert_eq!(s.time_shares[0], ("generate", 0.8));

        // `a` is run again (a resume) and proved; its old error stays in the log.
        append(&path, &line("a", SearchStatus::Proved, None));
        watch.refresh().unwrap();
        let s = watch.snapshot(20_000);
        assert_eq!((s.finished, s.proved, s.errors), (2, 2, 0));
        assert_eq!(s.last_errors, [("a".to_owned(), "REPL died".to_owned())]);
    }
}

//! A sweep: many theorems searched `concurrency` at a time, each result appended to
//! `results.jsonl` as it finishes, trajectories written in batches, and `summary.json` +
//! `report.md` at the end. A stopped or killed sweep leaves a directory `--resume` continues.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use indicatif::{ProgressBar, ProgressStyle};
use lean_bridge::Theorem;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::config::Config;
use crate::engine::{search_theorem, Clock, Phase, SearchParams, SystemClock};
use crate::env::ProofEnv;
use crate::policy::Policy;
use crate::summary::{append_run, RunRecord, Summary, SummaryError, CONFIG_FILE, RESULTS_FILE};
use crate::templates::{PromptTemplate, TemplateError};
use crate::value::ValueScorer;
use formats::results::SearchStatus;
use formats::results::{latest_by_name, ResultsError, ResultsWriter, TheoremResult};
use formats::trajectory::{
    theorems_in, trajectory_files, FailedRow, NodeRow, TrajectoryError, TrajectoryWriter,
};

/// The backends a sweep searches with.
#[derive(Clone)]
pub struct Backends {
    pub policy: Arc<dyn Policy>,
    pub scorer: Option<Arc<dyn ValueScorer>>,
    pub env: Arc<dyn ProofEnv>,
}

pub struct SweepOptions {
    /// Continue a sweep in `out_dir`: skip theorems already done, re-run those that ended in
    /// `error`.
    pub resume: bool,
    /// Searches at once (each holds one Lean session).
    pub concurrency: usize,
    /// Trajectory files are written every this many theorems ...
    pub trajectory_batch_theorems: usize,
    /// ... or this many node rows, whichever comes first.
    pub trajectory_batch_rows: usize,
    /// Draw a progress bar on stderr (indicatif hides it when stderr is not a terminal).
    pub progress: bool,
    /// Stop requests: 1 = start no new theorem and let running ones finish; 2 = abandon the
    /// running ones too (they are not recorded, so `--resume` runs them again).
    pub stop: Option<watch::Receiver<u32>>,
    /// After this many theorems in a row end in `error` (a dead server, a broken Lean
    /// install), start no more: they would all fail the same way. 0 = never.
    pub max_consecutive_errors: usize,
    /// The time source of every theorem's accounting (tests drive a manual one).
    pub clock: Arc<dyn Clock>,
}

impl Default for SweepOptions {
    fn default() -> Self {
        Self {
            resume: false,
            concurrency: 1,
            trajectory_batch_theorems: 16,
            trajectory_batch_rows: 50_000,
            progress: false,
            stop: None,
            max_consecutive_errors: 16,
            clock: Arc::new(SystemClock::default()),
        }
    }
}

#[derive(Debug)]
pub struct SweepReport {
    pub summary: Summary,
    /// Theorems searched by this run.
    pub searched: usize,
    /// Theorems skipped because an earlier run finished them.
    pub skipped: usize,
    /// A stop request (or `aborted`) ended the run before every theorem was searched.
    pub stopped: bool,
    /// Why the sweep gave up on its own (`max_consecutive_errors`).
    pub aborted: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error(transparent)]
    Results(#[from] ResultsError),
    #[error(transparent)]
    Trajectory(#[from] TrajectoryError),
    #[error(transparent)]
    Summary(#[from] SummaryError),
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the search of `{theorem}` panicked: {message}")]
    Panic { theorem: String, message: String },
}

enum Event {
    Joined(Option<Result<(tokio::task::Id, Finished), tokio::task::JoinError>>),
    /// A new stop level, or `None` when the stop channel closed.
    Stop(Option<u32>),
}

struct Finished {
    result: Box<TheoremResult>,
    nodes: Vec<NodeRow>,
    failed: Vec<FailedRow>,
}

/// Searches one theorem and closes its books (building the rows is engine time too).
async fn run_one(
    theorem: Theorem,
    config: Arc<Config>,
    template: Arc<PromptTemplate>,
    clock: Arc<dyn Clock>,
    backends: Backends,
) -> Finished {
    let params = SearchParams {
        config: &config.search,
        template: &template,
        default_header: &config.lean.header,
        clock: clock.as_ref(),
    };
    let outcome = search_theorem(
        &theorem,
        &params,
        backends.policy.as_ref(),
        backends.scorer.as_deref(),
        backends.env.as_ref(),
    )
    .await;
    let (nodes, failed) = outcome.trajectory_rows(&theorem.name);
    let mut timer = outcome.timer.clone();
    timer.lap(clock.as_ref(), Phase::Engine);
    let result = Box::new(outcome.result_line(&theorem.name, timer.finish(clock.as_ref())));
    Finished {
        result,
        nodes,
        failed,
    }
}

fn progress_bar(options: &SweepOptions, total: usize) -> ProgressBar {
    if !options.progress {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:30} {pos}/{len} done, {msg} [{elapsed_precise}, {per_sec}, ETA {eta}]",
        )
        .expect("valid progress template"),
    );
    bar
}

fn write_config(out_dir: &Path, config: &Config, resume: bool) -> Result<(), SweepError> {
    let path = out_dir.join(CONFIG_FILE);
    let json = serde_json::to_string_pretty(config).expect("config serialises") + "\n";
    if resume {
        if let Ok(old) = std::fs::read_to_string(&path) {
            if old != json {
                tracing::warn!(
                    "{} differs from the config of this run; it now holds this run's config",
                    path.display()
                );
            }
        }
    }
    std::fs::write(&path, json).map_err(|source| SweepError::Io { path, source })
}

/// Trajectories are written in batches, so a killed (not interrupted) sweep loses those of
/// the theorems it had finished since its last batch, while their result lines survive.
fn warn_missing_trajectories(dir: &Path, done: &HashSet<String>) -> Result<(), SweepError> {
    let (nodes, _) = trajectory_files(dir).map_err(|source| SweepError::Io {
        path: dir.to_owned(),
        source,
    })?;
    let written = theorems_in(&nodes)?;
    let missing = done.iter().filter(|n| !written.contains(*n)).count();
    if missing > 0 {
        tracing::warn!(
            "{missing} finished theorems have no trajectories (the previous run was killed before \
             writing its last batch); their results stand, their trees are lost"
        );
    }
    Ok(())
}

/// Runs `theorems` into `out_dir` (created if missing). `config` is the resolved config; it is
/// written to `config.json`.
pub async fn run_sweep(
    config: &Config,
    theorems: Vec<Theorem>,
    out_dir: &Path,
    mut options: SweepOptions,
    backends: Backends,
) -> Result<SweepReport, SweepError> {
    std::fs::create_dir_all(out_dir).map_err(|source| SweepError::Io {
        path: out_dir.to_owned(),
        source,
    })?;
    let template = Arc::new(PromptTemplate::from_config(&config.policy.template)?);
    let (mut results, previous) = ResultsWriter::open(&out_dir.join(RESULTS_FILE), options.resume)?;
    write_config(out_dir, config, options.resume)?;
    let mut trajectories = TrajectoryWriter::new(
        &out_dir.join("trajectories"),
        options.trajectory_batch_theorems,
        options.trajectory_batch_rows,
    )?;

    let done: HashSet<String> = latest_by_name(previous)
        .into_iter()
        .filter(|r| r.status != SearchStatus::Error)
        .map(|r| r.name)
        .collect();
    if !done.is_empty() {
        warn_missing_trajectories(&out_dir.join("trajectories"), &done)?;
    }
    let total = theorems.len();
    let mut queue: std::collections::VecDeque<Theorem> = theorems
        .into_iter()
        .filter(|t| !done.contains(&t.name))
        .collect();
    let skipped = total - queue.len();
    if skipped > 0 {
        tracing::info!("resuming: {skipped} of {total} theorems already done");
    }

    let run_started = std::time::Instant::now();
    let started_unix_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let servers_before = backends.policy.utilisation();
    let config = Arc::new(config.clone());
    let clock = options.clock.clone();
    let bar = progress_bar(&options, total);
    bar.set_position(skipped as u64);
    let mut proved = 0usize;
    bar.set_message("0 proved");

    let mut running: JoinSet<Finished> = JoinSet::new();
    let mut names: HashMap<tokio::task::Id, String> = HashMap::new();
    let mut searched = 0;
    let mut stop_level = 0;
    let mut consecutive_errors = 0;
    let mut aborted = None;
    let concurrency = options.concurrency.max(1);
    let mut stop = options.stop.take();
    let result: Result<(), SweepError> = loop {
        while stop_level == 0 && running.len() < concurrency {
            let Some(theorem) = queue.pop_front() else {
                break;
            };
            let name = theorem.name.clone();
            let task = running.spawn(run_one(
                theorem,
                config.clone(),
                template.clone(),
                clock.clone(),
                backends.clone(),
            ));
            names.insert(task.id(), name);
        }
        if running.is_empty() {
            break Ok(());
        }
        let event = match stop.as_mut() {
            // Biased: a stop request wins over a finished theorem, so nothing new starts after it.
            Some(rx) => tokio::select! {
                biased;
                changed = rx.changed() => Event::Stop(changed.ok().map(|()| *rx.borrow_and_update())),
                joined = running.join_next_with_id() => Event::Joined(joined),
            },
            None => Event::Joined(running.join_next_with_id().await),
        };
        let joined = match event {
            Event::Joined(joined) => joined,
            // The sender is gone: nobody can ask us to stop any more.
            Event::Stop(None) => {
                stop = None;
                continue;
            }
            Event::Stop(Some(level)) => {
                stop_level = level;
                if level >= 2 {
                    tracing::warn!(
                        "abandoning {} running theorems; --resume runs them again",
                        running.len()
                    );
                    running.shutdown().await;
                    break Ok(());
                }
                tracing::warn!(
                    "stopping: finishing {} running theorems (interrupt again to abandon them)",
                    running.len()
                );
                continue;
            }
        };
        let finished = match joined.expect("the set is not empty") {
            Ok((id, finished)) => {
                names.remove(&id);
                finished
            }
            Err(e) => {
                let theorem = names.remove(&e.id()).unwrap_or_default();
                break Err(SweepError::Panic {
                    theorem,
                    message: e.to_string(),
                });
            }
        };
        searched += 1;
        if let Err(e) = results.append(&finished.result) {
            break Err(e.into());
        }
        if let Err(e) = trajectories.push(finished.nodes, finished.failed) {
            break Err(e.into());
        }
        if finished.result.proved {
            proved += 1;
        }
        match &finished.result.error {
            Some(error) => {
                bar.suspend(|| tracing::warn!("{}: error: {error}", finished.result.name));
                consecutive_errors += 1;
                let limit = options.max_consecutive_errors;
                if limit > 0 && consecutive_errors >= limit && aborted.is_none() {
                    aborted = Some(format!(
                        "{consecutive_errors} theorems in a row ended in error, the last with: {error}"
                    ));
                    stop_level = stop_level.max(1);
                    bar.suspend(|| {
                        tracing::error!("giving up: {}", aborted.as_deref().unwrap_or(""))
                    });
                }
            }
            None => {
                consecutive_errors = 0;
                tracing::debug!("{}: {:?}", finished.result.name, finished.result.status);
            }
        }
        bar.set_message(format!("{proved} proved"));
        bar.inc(1);
    };
    // Whatever ended the loop, buffered trajectories are written before returning.
    let flushed = trajectories.flush();
    result?;
    flushed?;
    bar.finish_and_clear();

    let generate_servers = backends
        .policy
        .utilisation()
        .into_iter()
        .map(
            |after| match servers_before.iter().find(|b| b.url == after.url) {
                Some(before) => after.since(before),
                None => after,
            },
        )
        .collect();
    append_run(
        out_dir,
        &RunRecord {
            started_unix_ms,
            wall_ms: run_started.elapsed().as_secs_f64() * 1000.0,
            searched,
            stopped: stop_level > 0,
            generate_servers,
        },
    )?;
    let summary = Summary::from_dir(out_dir)?;
    summary.write(out_dir)?;
    Ok(SweepReport {
        summary,
        searched,
        skipped,
        stopped: stop_level > 0,
        aborted,
    })
}

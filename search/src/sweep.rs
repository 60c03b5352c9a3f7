//! A sweep: many theorems searched `concurrency` at a time, each result appended to
//! `results.jsonl` as it finishes, trajectories written in batches, `progress.json` rewritten
//! every few seconds for `watch`, and one `runs.jsonl` record per run. A stopped or killed
//! sweep leaves a directory `--resume` continues; the reports are the `run-folder` crate's.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use formats::theorems::Theorem;
use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::config::Config;
use crate::engine::{
    in_tail, search_theorem, tail_width, Clock, ExpansionWidth, Phase, SearchParams, SystemClock,
};
use crate::env::ProofEnv;
use crate::planner::Planner;
use crate::policy::Policy;
use crate::progress::{report_until, since, Reporter, Tracker, PROGRESS_INTERVAL};
use crate::request_setup::{RequestSetup, SetupError};
use crate::templates::PromptTemplate;
use crate::value::ValueScorer;
use formats::progress::{unix_ms, SweepState};
use formats::results::{
    latest_by_name, read_results, ErrorKind, ResultsError, ResultsWriter, SearchStatus,
    TheoremResult, RESULTS_FILE,
};
use formats::runs::{append_run, RunFileError, RunRecord, CONFIG_FILE};
use formats::trajectory::{
    theorems_in, trajectory_files, FailedRow, NodeRow, TrajectoryError, TrajectoryWriter,
};

/// The backends a sweep searches with.
#[derive(Clone)]
pub struct Backends {
    pub policy: Arc<dyn Policy>,
    pub scorer: Option<Arc<dyn ValueScorer>>,
    pub env: Arc<dyn ProofEnv>,
    /// `[planner]`, when it has servers.
    pub planner: Option<Arc<Planner>>,
}

pub struct SweepOptions {
    /// Continue a sweep in `out_dir`: skip theorems already done, re-run those whose `error`
    /// was the infrastructure's (a statement Lean rejected stays rejected).
    pub resume: bool,
    /// Trajectory files are written every this many theorems ...
    pub trajectory_batch_theorems: usize,
    /// ... or this many node rows, whichever comes first ...
    pub trajectory_batch_rows: usize,
    /// ... or when the oldest buffered theorem has waited this long (on `clock`), so a killed
    /// sweep loses the trees of at most this much finished work.
    pub trajectory_max_wait: Duration,
    /// Draw a progress bar on stderr (indicatif hides it when stderr is not a terminal).
    pub progress: bool,
    /// Stop requests: 1 = start no new theorem and let running ones finish; 2 = abandon the
    /// running ones too (they are not recorded, so `--resume` runs them again); 3 = return as
    /// soon as what is buffered is written.
    pub stop: Option<watch::Receiver<u32>>,
    /// After this many theorems in a row end in an infrastructure error (a dead server, a
    /// broken Lean install), start no more: they would all fail the same way. 0 = never.
    pub max_consecutive_errors: usize,
    /// The time source of every theorem's accounting and of the flush timer (tests drive a
    /// manual one).
    pub clock: Arc<dyn Clock>,
    /// How often `progress.json` is rewritten and the generate timeline sampled (real time).
    pub progress_interval: Duration,
}

impl Default for SweepOptions {
    fn default() -> Self {
        Self {
            resume: false,
            trajectory_batch_theorems: 16,
            trajectory_batch_rows: 50_000,
            trajectory_max_wait: Duration::from_secs(60),
            progress: false,
            stop: None,
            max_consecutive_errors: 16,
            clock: Arc::new(SystemClock::default()),
            progress_interval: PROGRESS_INTERVAL,
        }
    }
}

#[derive(Debug)]
pub struct SweepReport {
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
    RunFile(#[from] RunFileError),
    #[error(transparent)]
    Setup(#[from] SetupError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the search of `{theorem}` panicked: {message}")]
    Panic { theorem: String, message: String },
}

struct Finished {
    result: Box<TheoremResult>,
    nodes: Vec<NodeRow>,
    failed: Vec<FailedRow>,
}

/// Searches one theorem and closes its books (building the rows is engine time too).
async fn run_one(theorem: Theorem, job: SearchJob) -> Finished {
    let SearchJob {
        config,
        template,
        clock,
        backends,
        run_id,
        width,
    } = job;
    let params = SearchParams {
        config: &config.search,
        template: &template,
        default_header: &config.lean.header,
        clock: clock.as_ref(),
        width: width.as_deref(),
        planner: backends.planner.as_deref(),
    };
    let outcome = search_theorem(
        &theorem,
        &params,
        backends.policy.as_ref(),
        backends.scorer.as_deref(),
        backends.env.as_ref(),
    )
    .await;
    let (nodes, failed) = outcome.trajectory_rows(&theorem.name, run_id);
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

/// Runs `theorems` into `out_dir` (created if missing), `config.sweep.concurrency` at a time.
/// `config` is the resolved config; it is written to `config.json`.
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
    let template = Arc::new(RequestSetup::from_config(config)?.template);
    let results_path = out_dir.join(RESULTS_FILE);
    let (results, done) = if options.resume {
        let (writer, kept) = ResultsWriter::resume(&results_path, searched_again)?;
        (writer, kept.into_iter().map(|r| r.name).collect())
    } else {
        (ResultsWriter::create(&results_path)?, HashSet::new())
    };
    write_config(out_dir, config, options.resume)?;
    let trajectories = TrajectoryWriter::new(
        &out_dir.join("trajectories"),
        options.trajectory_batch_theorems,
        options.trajectory_batch_rows,
    )?;
    if !done.is_empty() {
        warn_missing_trajectories(&out_dir.join("trajectories"), &done)?;
    }
    let total = theorems.len();
    let queue: VecDeque<Theorem> = theorems
        .into_iter()
        .filter(|t| !done.contains(&t.name))
        .collect();
    let skipped = total - queue.len();
    if skipped > 0 {
        tracing::info!("resuming: {skipped} of {total} theorems already done");
    }

    let run_started = std::time::Instant::now();
    let started_unix_ms = unix_ms();
    let servers_before = backends.policy.utilisation();
    let bar = progress_bar(&options, total);
    bar.set_position(skipped as u64);
    bar.set_message("0 proved");
    // progress.json and the generate timeline, for readers in other shells (`watch`).
    let tracker = Arc::new(Tracker::new(total, skipped, started_unix_ms));
    let (reporter_done, done) = tokio::sync::oneshot::channel();
    let reporter = tokio::spawn(report_until(
        Reporter::new(out_dir, tracker.clone(), backends.policy.clone()),
        options.progress_interval,
        done,
    ));
    let mut sweep = Sweep {
        search: SearchJob {
            config: Arc::new(config.clone()),
            template,
            clock: options.clock.clone(),
            backends: backends.clone(),
            run_id: started_unix_ms as i64,
            width: (config.sweep.fill_tail || config.sweep.speculate_tail)
                .then(|| Arc::new(ExpansionWidth::new(config.search.batch_expansion_size))),
        },
        concurrency: config.sweep.concurrency.max(1),
        queue,
        running: JoinSet::new(),
        names: HashMap::new(),
        results,
        trajectories,
        buffered_since: None,
        max_wait: options.trajectory_max_wait,
        stop: options.stop.take(),
        stop_level: 0,
        max_consecutive_errors: options.max_consecutive_errors,
        consecutive_errors: 0,
        searched: 0,
        proved: 0,
        aborted: None,
        bar,
        tracker: tracker.clone(),
    };
    // Whatever ends the run, buffered trajectories are written before returning.
    let ran = sweep.run().await;
    let flushed = sweep.trajectories.flush();
    tracker.set_state(if sweep.stop_level > 0 || ran.is_err() {
        SweepState::Stopped
    } else {
        SweepState::Finished
    });
    // The reporter's last tick writes the final state; a reporter that panicked only costs
    // the watchers their view.
    let _ = reporter_done.send(());
    if let Err(e) = reporter.await {
        tracing::warn!("the progress.json writer failed: {e}");
    }
    ran?;
    flushed?;
    sweep.bar.finish_and_clear();

    let generate_servers = since(&backends.policy.utilisation(), &servers_before);
    append_run(
        out_dir,
        &RunRecord {
            started_unix_ms,
            wall_ms: run_started.elapsed().as_secs_f64() * 1000.0,
            searched: sweep.searched,
            stopped: sweep.stop_level > 0,
            generate_servers,
        },
    )?;
    Ok(SweepReport {
        searched: sweep.searched,
        skipped,
        stopped: sweep.stop_level > 0,
        aborted: sweep.aborted,
    })
}

/// The theorems a sweep into `out_dir` will search, in their order: all of them, or with
/// `resume` those that `results.jsonl` does not settle (the rule [`run_sweep`] applies). Lets
/// the caller import the right headers on the Lean workers before the sweep starts.
pub fn still_to_search<'a>(
    theorems: &'a [Theorem],
    out_dir: &Path,
    resume: bool,
) -> Result<Vec<&'a Theorem>, SweepError> {
    let path = out_dir.join(RESULTS_FILE);
    if !resume || !path.exists() {
        return Ok(theorems.iter().collect());
    }
    let done: HashSet<String> = latest_by_name(read_results(&path)?)
        .into_iter()
        .filter(|r| !searched_again(r))
        .map(|r| r.name)
        .collect();
    Ok(theorems
        .iter()
        .filter(|t| !done.contains(&t.name))
        .collect())
}

/// Whether `--resume` searches a theorem again: only when the infrastructure failed it. Lines
/// from before `error_kind` existed count as infrastructure errors.
fn searched_again(result: &TheoremResult) -> bool {
    result.status == SearchStatus::Error && result.error_kind != Some(ErrorKind::Statement)
}

/// What starting one theorem's search needs, shared by every search of the run.
#[derive(Clone)]
struct SearchJob {
    config: Arc<Config>,
    template: Arc<PromptTemplate>,
    clock: Arc<dyn Clock>,
    backends: Backends,
    /// Stamped on every trajectory row of this run.
    run_id: i64,
    /// With `sweep.fill_tail` or `sweep.speculate_tail`: what every running search reads
    /// about the tail, set by [`Sweep::signal_tail`].
    width: Option<Arc<ExpansionWidth>>,
}

/// One run of a sweep as a state machine: each [`Event`] moves it on, and the writes it owes
/// (result lines as theorems finish, trajectory batches when full or overdue) happen in the
/// handler of that event.
struct Sweep {
    search: SearchJob,
    concurrency: usize,
    queue: VecDeque<Theorem>,
    running: JoinSet<Finished>,
    names: HashMap<tokio::task::Id, String>,
    results: ResultsWriter,
    trajectories: TrajectoryWriter,
    /// When (on the clock) the oldest buffered theorem's rows were pushed.
    buffered_since: Option<Duration>,
    max_wait: Duration,
    stop: Option<watch::Receiver<u32>>,
    stop_level: u32,
    max_consecutive_errors: usize,
    consecutive_errors: usize,
    searched: usize,
    proved: usize,
    aborted: Option<String>,
    bar: ProgressBar,
    /// What `progress.json` says is running.
    tracker: Arc<Tracker>,
}

enum Event {
    Finished(Result<(tokio::task::Id, Finished), tokio::task::JoinError>),
    /// A new stop level, or `None` when the stop channel closed.
    Stop(Option<u32>),
    /// The oldest buffered trajectories have waited `max_wait`.
    FlushDue,
}

impl Sweep {
    async fn run(&mut self) -> Result<(), SweepError> {
        loop {
            self.start_theorems();
            self.signal_tail();
            if self.running.is_empty() {
                return Ok(());
            }
            match self.next_event().await {
                Event::Finished(joined) => self.on_finished(joined)?,
                Event::FlushDue => self.flush_trajectories()?,
                // The sender is gone: nobody can ask us to stop any more.
                Event::Stop(None) => self.stop = None,
                Event::Stop(Some(level)) => {
                    if self.on_stop(level).await? {
                        return Ok(());
                    }
                }
            }
        }
    }

    /// Starts queued theorems up to the concurrency, unless stopping.
    fn start_theorems(&mut self) {
        while self.stop_level == 0 && self.running.len() < self.concurrency {
            let Some(theorem) = self.queue.pop_front() else {
                return;
            };
            let name = theorem.name.clone();
            self.tracker.started(&name);
            let task = self.running.spawn(run_one(theorem, self.search.clone()));
            self.names.insert(task.id(), name);
        }
    }

    /// `sweep.fill_tail`, `sweep.speculate_tail`: tells the running searches their expansion
    /// width and whether to speculate, for the theorems now running and still to start (none
    /// once stopping).
    fn signal_tail(&self) {
        let Some(width) = &self.search.width else {
            return;
        };
        let queued = if self.stop_level == 0 {
            self.queue.len()
        } else {
            0
        };
        let (running, sweep) = (self.running.len(), &self.search.config.sweep);
        let bex = self.search.config.search.batch_expansion_size;
        width.set(if sweep.fill_tail {
            tail_width(bex, self.concurrency, running, queued)
        } else {
            bex
        });
        width.set_speculate(sweep.speculate_tail && in_tail(self.concurrency, running, queued));
    }

    /// Biased: a stop request wins over a due flush, which wins over a finished theorem, so
    /// nothing new starts after a stop and an overdue batch is never starved.
    async fn next_event(&mut self) -> Event {
        let clock = self.search.clock.clone();
        let flush_at = self.buffered_since.map(|since| since + self.max_wait);
        let flush_due = async {
            match flush_at {
                Some(at) => clock.sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let stop = async {
            match self.stop.as_mut() {
                Some(rx) => rx.changed().await.ok().map(|()| *rx.borrow_and_update()),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            level = stop => Event::Stop(level),
            () = flush_due => Event::FlushDue,
            joined = self.running.join_next_with_id() => {
                Event::Finished(joined.expect("run() waits only while theorems are running"))
            }
        }
    }

    fn on_finished(
        &mut self,
        joined: Result<(tokio::task::Id, Finished), tokio::task::JoinError>,
    ) -> Result<(), SweepError> {
        let finished = match joined {
            Ok((id, finished)) => {
                self.names.remove(&id);
                finished
            }
            Err(e) => {
                return Err(SweepError::Panic {
                    theorem: self.names.remove(&e.id()).unwrap_or_default(),
                    message: e.to_string(),
                })
            }
        };
        self.searched += 1;
        let result = &finished.result;
        self.tracker.finished(&result.name);
        self.results.append(result)?;
        self.trajectories.push(finished.nodes, finished.failed)?;
        self.buffered_since = match self.trajectories.buffered_theorems() {
            0 => None,
            _ => Some(self.buffered_since.unwrap_or(self.search.clock.now())),
        };
        self.proved += usize::from(result.proved);
        match (&result.error, result.error_kind) {
            (Some(error), kind) => {
                self.bar
                    .suspend(|| tracing::warn!("{}: error: {error}", result.name));
                // A statement Lean rejects says nothing about the servers.
                if kind != Some(ErrorKind::Statement) {
                    self.consecutive_errors += 1;
                    self.give_up_after_errors(error);
                }
            }
            (None, _) => {
                self.consecutive_errors = 0;
                tracing::debug!("{}: {:?}", result.name, result.status);
            }
        }
        self.bar.set_message(format!("{} proved", self.proved));
        self.bar.inc(1);
        Ok(())
    }

    fn give_up_after_errors(&mut self, last: &str) {
        let limit = self.max_consecutive_errors;
        if limit == 0 || self.consecutive_errors < limit || self.aborted.is_some() {
            return;
        }
        let reason = format!(
            "{} theorems in a row ended in an infrastructure error, the last with: {last}",
            self.consecutive_errors
        );
        self.bar.suspend(|| tracing::error!("giving up: {reason}"));
        self.aborted = Some(reason);
        self.stop_level = self.stop_level.max(1);
        self.tracker.set_state(SweepState::Stopping);
    }

    fn flush_trajectories(&mut self) -> Result<(), SweepError> {
        self.trajectories.flush()?;
        self.buffered_since = None;
        Ok(())
    }

    /// Returns whether the run ends now.
    async fn on_stop(&mut self, level: u32) -> Result<bool, SweepError> {
        self.stop_level = level;
        match level {
            0 => Ok(false),
            1 => {
                self.tracker.set_state(SweepState::Stopping);
                tracing::warn!(
                    "stopping: finishing {} running theorems (interrupt again to abandon them)",
                    self.running.len()
                );
                Ok(false)
            }
            _ => {
                tracing::warn!(
                    "abandoning {} running theorems; --resume runs them again",
                    self.running.len()
                );
                // What is buffered goes out first: a further interrupt may not wait for the
                // running searches to wind down.
                self.flush_trajectories()?;
                self.running.abort_all();
                Ok(true)
            }
        }
    }
}

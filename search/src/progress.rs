//! The sweep's side of `DIR/progress.json` and `DIR/generate_timeline.jsonl` (the files'
//! types are `formats::progress`): which theorems run, and the policy client's request
//! timeline sampled once per interval.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use formats::progress::{
    append_timeline, unix_ms, write_progress, InFlight, Progress, ProgressError, SweepState,
    TimelineSample, STEPPED_INTERVALS,
};
use formats::utilisation::UrlUtilisation;

use crate::policy::Policy;

/// How often a sweep rewrites `progress.json` and appends to the timeline.
pub const PROGRESS_INTERVAL: Duration = Duration::from_secs(2);

/// The window of `Progress::generate_last_minute`.
const LAST_MINUTE: Duration = Duration::from_secs(60);

/// The sweep's side of `progress.json`: which theorems are running and the run's state.
#[derive(Debug)]
pub struct Tracker {
    total: usize,
    skipped: usize,
    run_started_unix_ms: u64,
    inner: Mutex<(SweepState, BTreeMap<String, u64>)>,
}

impl Tracker {
    pub fn new(total: usize, skipped: usize, run_started_unix_ms: u64) -> Self {
        Self {
            total,
            skipped,
            run_started_unix_ms,
            inner: Mutex::new((SweepState::Running, BTreeMap::new())),
        }
    }

    pub fn started(&self, name: &str) {
        self.inner
            .lock()
            .expect("tracker lock")
            .1
            .insert(name.to_owned(), unix_ms());
    }

    pub fn finished(&self, name: &str) {
        self.inner.lock().expect("tracker lock").1.remove(name);
    }

    pub fn set_state(&self, state: SweepState) {
        self.inner.lock().expect("tracker lock").0 = state;
    }
}

/// Takes the timeline samples and writes the files; [`Reporter::tick`] once per interval.
pub struct Reporter {
    dir: PathBuf,
    tracker: Arc<Tracker>,
    policy: Arc<dyn Policy>,
    last: (Instant, Vec<UrlUtilisation>),
    /// Snapshots over the last minute, oldest first, for the busy share `watch` shows.
    window: VecDeque<(Instant, Vec<UrlUtilisation>)>,
    ticks: usize,
}

impl Reporter {
    pub fn new(dir: &Path, tracker: Arc<Tracker>, policy: Arc<dyn Policy>) -> Self {
        let now = (Instant::now(), policy.utilisation());
        // Starts the record of in-flight steps, which the first ticks carry to the timeline.
        policy.drain_in_flight_steps(true);
        Self {
            dir: dir.to_owned(),
            tracker,
            policy,
            window: VecDeque::from([now.clone()]),
            last: now,
            ticks: 0,
        }
    }

    /// Appends the interval since the last tick to the timeline and rewrites `progress.json`.
    /// The first [`STEPPED_INTERVALS`] intervals carry their in-flight steps; the record stops
    /// at the last of them.
    pub fn tick(&mut self) -> Result<(), ProgressError> {
        let now = (Instant::now(), self.policy.utilisation());
        self.ticks += 1;
        let interval_ms = now.0.duration_since(self.last.0).as_secs_f64() * 1000.0;
        let sample = TimelineSample {
            run_started_unix_ms: self.tracker.run_started_unix_ms,
            unix_ms: unix_ms(),
            interval_ms,
            servers: since(&now.1, &self.last.1),
            in_flight_steps: self
                .policy
                .drain_in_flight_steps(self.ticks < STEPPED_INTERVALS),
        };
        if !sample.servers.is_empty() {
            append_timeline(&self.dir, &sample)?;
        }
        while self
            .window
            .front()
            .is_some_and(|(at, _)| now.0.duration_since(*at) > LAST_MINUTE)
            && self.window.len() > 1
        {
            self.window.pop_front();
        }
        let (oldest_at, oldest) = self.window.front().expect("the window keeps one").clone();
        self.window.push_back(now.clone());
        self.last = now;

        let (state, in_flight) = {
            let inner = self.tracker.inner.lock().expect("tracker lock");
            (inner.0, inner.1.clone())
        };
        let mut in_flight: Vec<InFlight> = in_flight
            .into_iter()
            .map(|(name, started_unix_ms)| InFlight {
                name,
                started_unix_ms,
            })
            .collect();
        in_flight.sort_by_key(|t| t.started_unix_ms);
        let progress = Progress {
            state,
            updated_unix_ms: sample.unix_ms,
            interval_ms: PROGRESS_INTERVAL.as_millis() as u64,
            run_started_unix_ms: self.tracker.run_started_unix_ms,
            total: self.tracker.total,
            skipped: self.tracker.skipped,
            in_flight,
            generate_last_minute: since(&self.last.1, &oldest),
            generate_window_ms: self.last.0.duration_since(oldest_at).as_secs_f64() * 1000.0,
        };
        write_progress(&self.dir, &progress)
    }
}

/// Ticks every `every` until `done` fires, then once more, so the files end with the final
/// state. Errors are logged, not fatal: these files are for watching, the results stand alone.
pub async fn report_until(
    mut reporter: Reporter,
    every: Duration,
    done: tokio::sync::oneshot::Receiver<()>,
) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(done);
    loop {
        tokio::select! {
            _ = &mut done => break,
            _ = ticks.tick() => {}
        }
        if let Err(e) = reporter.tick() {
            tracing::warn!("{e}");
        }
    }
    if let Err(e) = reporter.tick() {
        tracing::warn!("{e}");
    }
}

pub(crate) fn since(now: &[UrlUtilisation], before: &[UrlUtilisation]) -> Vec<UrlUtilisation> {
    now.iter()
        .map(|u| match before.iter().find(|b| b.url == u.url) {
            Some(b) => u.since(b),
            None => u.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Completion, PolicyError};
    use formats::progress::{read_progress, read_timeline, InFlightStep};

    /// A policy whose utilisation the test sets, and whose level changes once per interval
    /// while its record of steps is on.
    struct Counters {
        utilisation: Mutex<Vec<UrlUtilisation>>,
        recording: Mutex<bool>,
    }

    impl Counters {
        fn new(utilisation: Vec<UrlUtilisation>) -> Arc<Self> {
            Arc::new(Self {
                utilisation: Mutex::new(utilisation),
                recording: Mutex::new(false),
            })
        }
    }

    #[async_trait::async_trait]
    impl Policy for Counters {
        async fn generate(
            &self,
            _prompts: &[String],
            _n: usize,
        ) -> Result<Vec<Vec<Completion>>, PolicyError> {
            unreachable!("the reporter never generates")
        }
        fn utilisation(&self) -> Vec<UrlUtilisation> {
            self.utilisation.lock().unwrap().clone()
        }
        fn drain_in_flight_steps(&self, keep_recording: bool) -> Vec<InFlightStep> {
            let mut recording = self.recording.lock().unwrap();
            let drained = if *recording {
                vec![InFlightStep {
                    unix_ms: 0,
                    url: "http://gpu0".into(),
                    requests: 1,
                    prompts: 8,
                }]
            } else {
                Vec::new()
            };
            *recording = keep_recording;
            drained
        }
    }

    fn counters(requests: u64, busy_ms: f64) -> Vec<UrlUtilisation> {
        vec![UrlUtilisation {
            url: "http://gpu0".into(),
            requests,
            prompts: requests * 8,
            busy_ms,
            prompt_ms: busy_ms * 8.0,
        }]
    }

    #[test]
    fn ticks_append_interval_deltas_and_rewrite_progress() {
        let dir = tempfile::tempdir().unwrap();
        let policy = Counters::new(counters(5, 100.0));
        let tracker = Arc::new(Tracker::new(10, 2, 1234));
        let mut reporter = Reporter::new(dir.path(), tracker.clone(), policy.clone());
        tracker.started("a");
        tracker.started("b");
        *policy.utilisation.lock().unwrap() = counters(7, 150.0);
        reporter.tick().unwrap();
        tracker.finished("a");
        tracker.set_state(SweepState::Finished);
        *policy.utilisation.lock().unwrap() = counters(10, 400.0);
        reporter.tick().unwrap();

        let timeline = read_timeline(dir.path()).unwrap();
        let deltas: Vec<(u64, f64)> = timeline
            .iter()
            .map(|s| (s.servers[0].requests, s.servers[0].busy_ms))
            .collect();
        assert_eq!(deltas, [(2, 50.0), (3, 250.0)]);
        assert!(timeline.iter().all(|s| s.run_started_unix_ms == 1234));

        let progress = read_progress(dir.path()).unwrap().unwrap();
        assert_eq!(progress.state, SweepState::Finished);
        assert_eq!((progress.total, progress.skipped), (10, 2));
        let running: Vec<&str> = progress.in_flight.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(running, ["b"]);
        // Both intervals are inside the last minute.
        assert_eq!(progress.generate_last_minute[0].requests, 5);
        assert!(!dir.path().join("progress.json.tmp").exists());
    }

    #[test]
    fn only_the_first_intervals_carry_in_flight_steps_and_the_record_then_stops() {
        let dir = tempfile::tempdir().unwrap();
        let policy = Counters::new(counters(0, 0.0));
        let tracker = Arc::new(Tracker::new(1, 0, 1234));
        let mut reporter = Reporter::new(dir.path(), tracker, policy.clone());
        for _ in 0..STEPPED_INTERVALS + 3 {
            reporter.tick().unwrap();
        }
        let steps: Vec<usize> = read_timeline(dir.path())
            .unwrap()
            .iter()
            .map(|s| s.in_flight_steps.len())
            .collect();
        let mut expected = vec![1; STEPPED_INTERVALS];
        expected.extend([0; 3]);
        assert_eq!(steps, expected);
        assert!(!*policy.recording.lock().unwrap());
    }
}

//! Generate-server utilisation, from the client's own request timeline: per server, how long at
//! least one request was in flight and the time integral of the prompts in flight. The GPU is
//! the scarce resource of a sweep, so this is the number that says whether it was kept busy.
//!
//! Kept as running integrals updated at each request's start and end (a lock and a few
//! additions per request), so memory does not grow with the sweep. A prompt sampled `n` times
//! counts `n` prompts: that is how many sequences the server batches.
//!
//! On request, each change of the levels is also recorded, for a caller that drains the record
//! as it goes (the sweep's reporter, over a short sweep's first intervals): a short sweep's
//! load is then drawn exactly, not as a few interval means.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use formats::progress::{unix_ms, InFlightStep};
use formats::utilisation::UrlUtilisation;

/// One server's running integrals; times are offsets from the timeline's origin.
#[derive(Debug, Clone, Default)]
struct Track {
    in_flight: u64,
    prompts_in_flight: u64,
    last: Duration,
    totals: UrlUtilisation,
}

impl Track {
    /// Integrates the current levels up to `now`.
    fn advance(&mut self, now: Duration) {
        let now = now.max(self.last);
        let ms = (now - self.last).as_secs_f64() * 1000.0;
        if self.in_flight > 0 {
            self.totals.busy_ms += ms;
        }
        self.totals.prompt_ms += ms * self.prompts_in_flight as f64;
        self.last = now;
    }

    fn begin(&mut self, now: Duration, prompts: u64) {
        self.advance(now);
        self.in_flight += 1;
        self.prompts_in_flight += prompts;
    }

    fn end(&mut self, now: Duration, prompts: u64) {
        self.advance(now);
        self.in_flight -= 1;
        self.prompts_in_flight -= prompts;
        self.totals.requests += 1;
        self.totals.prompts += prompts;
    }

    fn snapshot(&self, now: Duration) -> UrlUtilisation {
        let mut copy = self.clone();
        copy.advance(now);
        copy.totals
    }
}

/// One change of a server's levels; `at` from the timeline's origin.
#[derive(Debug, Clone)]
struct Step {
    at: Duration,
    server: usize,
    requests: u64,
    prompts: u64,
}

/// What the timeline's lock guards.
#[derive(Debug)]
struct Books {
    tracks: Vec<Track>,
    /// The changes not yet drained, while a caller records them.
    steps: Option<Vec<Step>>,
}

impl Books {
    fn level(&self, at: Duration, server: usize) -> Step {
        let t = &self.tracks[server];
        Step {
            at,
            server,
            requests: t.in_flight,
            prompts: t.prompts_in_flight,
        }
    }

    fn record(&mut self, at: Duration, server: usize) {
        let step = self.level(at, server);
        if let Some(steps) = &mut self.steps {
            steps.push(step);
        }
    }
}

/// The request timelines of a client's servers.
#[derive(Debug)]
pub(crate) struct Timeline {
    origin: Instant,
    origin_unix_ms: u64,
    books: Mutex<Books>,
}

impl Timeline {
    pub(crate) fn new(urls: &[String]) -> Self {
        let tracks = urls
            .iter()
            .map(|url| Track {
                totals: UrlUtilisation {
                    url: url.clone(),
                    ..UrlUtilisation::default()
                },
                ..Track::default()
            })
            .collect();
        Self {
            origin: Instant::now(),
            origin_unix_ms: unix_ms(),
            books: Mutex::new(Books {
                tracks,
                steps: None,
            }),
        }
    }

    /// Marks a request of `prompts` prompts to server `i` in flight until the guard drops
    /// (also when the request's future is cancelled).
    pub(crate) fn begin(&self, i: usize, prompts: u64) -> InFlight<'_> {
        let mut books = self.books.lock().expect("timeline lock");
        // Read under the lock, so recorded steps are in time order.
        let now = self.origin.elapsed();
        books.tracks[i].begin(now, prompts);
        books.record(now, i);
        InFlight {
            timeline: self,
            i,
            prompts,
        }
    }

    pub(crate) fn snapshot(&self) -> Vec<UrlUtilisation> {
        let now = self.origin.elapsed();
        self.books
            .lock()
            .expect("timeline lock")
            .tracks
            .iter()
            .map(|t| t.snapshot(now))
            .collect()
    }

    /// The changes recorded since the last call, oldest first. A call with `keep_recording`
    /// starts the record (with each server's levels now) or keeps it going; one without stops
    /// it, so the record holds only what its caller has yet to drain.
    pub(crate) fn drain_steps(&self, keep_recording: bool) -> Vec<InFlightStep> {
        let mut books = self.books.lock().expect("timeline lock");
        let now = self.origin.elapsed();
        let recording = books.steps.is_some();
        let drained = books.steps.take().unwrap_or_default();
        if keep_recording {
            books.steps = Some(if recording {
                Vec::new()
            } else {
                (0..books.tracks.len())
                    .map(|i| books.level(now, i))
                    .collect()
            });
        }
        drained
            .into_iter()
            .map(|s| InFlightStep {
                unix_ms: self.origin_unix_ms + s.at.as_millis() as u64,
                url: books.tracks[s.server].totals.url.clone(),
                requests: s.requests,
                prompts: s.prompts,
            })
            .collect()
    }
}

pub(crate) struct InFlight<'a> {
    timeline: &'a Timeline,
    i: usize,
    prompts: u64,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if let Ok(mut books) = self.timeline.books.lock() {
            let now = self.timeline.origin.elapsed();
            books.tracks[self.i].end(now, self.prompts);
            books.record(now, self.i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn integrates_overlapping_requests_and_idle_gaps() {
        let mut t = Track::default();
        t.begin(ms(0), 16);
        t.begin(ms(10), 16);
        t.end(ms(20), 16);
        let earlier = t.snapshot(ms(20));
        t.end(ms(40), 16);
        // Idle from 40 to 60, then one request still running at the snapshot.
        t.begin(ms(60), 4);
        let s = t.snapshot(ms(70));
        assert_eq!(s.busy_ms, 50.0);
        assert_eq!(
            s.prompt_ms,
            16.0 * 10.0 + 32.0 * 10.0 + 16.0 * 20.0 + 4.0 * 10.0
        );
        assert_eq!((s.requests, s.prompts), (2, 32));
        let over = s.since(&earlier);
        assert_eq!((over.busy_ms, over.requests), (30.0, 1));
        assert_eq!(over.busy_share(50.0), 0.6);
        assert_eq!(over.mean_prompts_in_flight(50.0), (320.0 + 40.0) / 50.0);
    }

    #[test]
    fn a_dropped_guard_ends_its_request() {
        let timeline = Timeline::new(&["http://a".to_owned(), "http://b".to_owned()]);
        {
            let _a = timeline.begin(1, 3);
            let inside = timeline.snapshot();
            assert_eq!(inside[1].requests, 0);
        }
        let after = timeline.snapshot();
        assert_eq!(
            (after[1].url.as_str(), after[1].requests, after[1].prompts),
            ("http://b", 1, 3)
        );
        assert_eq!(after[0].requests, 0);
    }

    #[test]
    fn steps_are_recorded_only_between_a_start_and_a_stop_and_drained_once() {
        let timeline = Timeline::new(&["http://a".to_owned(), "http://b".to_owned()]);
        drop(timeline.begin(0, 2));
        let held = timeline.begin(0, 4);
        assert!(
            timeline.drain_steps(true).is_empty(),
            "nothing is recorded before the record starts"
        );
        drop(timeline.begin(1, 3));
        drop(held);
        let levels = |steps: Vec<InFlightStep>| {
            assert!(steps.windows(2).all(|w| w[0].unix_ms <= w[1].unix_ms));
            steps
                .into_iter()
                .map(|s| (s.url, s.requests, s.prompts))
                .collect::<Vec<_>>()
        };
        let step = |url: &str, requests, prompts| (url.to_owned(), requests, prompts);
        assert_eq!(
            levels(timeline.drain_steps(true)),
            [
                // The levels when the record started, then each change.
                step("http://a", 1, 4),
                step("http://b", 0, 0),
                step("http://b", 1, 3),
                step("http://b", 0, 0),
                step("http://a", 0, 0),
            ]
        );
        let held = timeline.begin(1, 5);
        assert_eq!(
            levels(timeline.drain_steps(false)),
            [step("http://b", 1, 5)]
        );
        drop(held);
        assert!(timeline.drain_steps(false).is_empty(), "the record stopped");
        assert_eq!(timeline.snapshot()[1].requests, 2);
    }
}

//! Generate-server utilisation, from the client's own request timeline: per server, how long at
//! least one request was in flight and the time integral of the prompts in flight. The GPU is
//! the scarce resource of a sweep, so this is the number that says whether it was kept busy.
//!
//! Kept as running integrals updated at each request's start and end (a lock and a few
//! additions per request), so memory does not grow with the sweep. A prompt sampled `n` times
//! counts `n` prompts: that is how many sequences the server batches.

use std::sync::Mutex;
use std::time::{Duration, Instant};

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

/// The request timelines of a client's servers.
#[derive(Debug)]
pub(crate) struct Timeline {
    origin: Instant,
    tracks: Mutex<Vec<Track>>,
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
            tracks: Mutex::new(tracks),
        }
    }

    /// Marks a request of `prompts` prompts to server `i` in flight until the guard drops
    /// (also when the request's future is cancelled).
    pub(crate) fn begin(&self, i: usize, prompts: u64) -> InFlight<'_> {
        self.tracks.lock().expect("timeline lock")[i].begin(self.origin.elapsed(), prompts);
        InFlight {
            timeline: self,
            i,
            prompts,
        }
    }

    pub(crate) fn snapshot(&self) -> Vec<UrlUtilisation> {
        let now = self.origin.elapsed();
        self.tracks
            .lock()
            .expect("timeline lock")
            .iter()
            .map(|t| t.snapshot(now))
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
        let now = self.timeline.origin.elapsed();
        if let Ok(mut tracks) = self.timeline.tracks.lock() {
            tracks[self.i].end(now, self.prompts);
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
}

//! Dynamic batching over two queues: `/score` (a search waiting on each answer) always goes
//! before `/encode` (bulk embedding), so `ebm embed` on the same server never slows a sweep.
//!
//! A task takes a *round* from a queue: everything waiting there (after lingering for company
//! when the server was idle), sorted by token count and cut into batches by batch size,
//! padded tokens (`b·t`) and squared padded tokens (`b·t²`, the attention memory of
//! `forward_memory`), so short states don't pay for the longest one. Every batch of a round
//! runs before that queue is read again (no state waits behind newer, shorter ones), and
//! before each `/encode` batch any waiting `/score` round goes first. A forward pass that fails
//! (an out-of-memory GPU, a non-finite embedding) is retried in halves down to single texts
//! before a waiter gets an error. Forward passes run on the blocking thread pool so the async
//! runtime keeps accepting requests meanwhile.

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use crate::cache::{Embedding, EmbeddingCache};
use crate::llama_encoder::LlamaEncoder;

#[derive(Clone, Debug)]
pub struct BatchLimits {
    /// How long the first text of an idle server waits for company. Zero: take only what is
    /// queued.
    pub linger: Duration,
    pub max_batch: usize,
    /// Cap on `batch size x longest sequence` (the padded tokens of one forward pass).
    pub max_batch_tokens: usize,
    /// Cap on `batch size x longest sequence²`, which the attention memory grows with
    /// (`forward_memory`).
    pub max_batch_square_tokens: usize,
}

impl BatchLimits {
    /// Whether `count` sequences padded to `longest` tokens fit one forward pass.
    pub fn fits(&self, count: usize, longest: usize) -> bool {
        count <= self.max_batch
            && count.saturating_mul(longest) <= self.max_batch_tokens
            && count.saturating_mul(longest).saturating_mul(longest) <= self.max_batch_square_tokens
    }
}

/// Consecutive batches over sequences of these lengths, in the given order: each as long as
/// the limits allow (a sequence that fits no batch with company goes alone). Sort the lengths
/// first to group by length.
pub fn cut_batches(lengths: &[usize], limits: &BatchLimits) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut longest = 0;
    for (i, &len) in lengths.iter().enumerate() {
        let wider = longest.max(len);
        if i > start && !limits.fits(i - start + 1, wider) {
            out.push(start..i);
            start = i;
            longest = len;
        } else {
            longest = wider;
        }
    }
    if start < lengths.len() {
        out.push(start..lengths.len());
    }
    out
}

/// One text waiting for its embedding.
pub struct Job {
    /// The cache key: the text as the client sent it.
    pub text: String,
    pub ids: Vec<u32>,
    pub enqueued: Instant,
    pub reply: oneshot::Sender<Result<Embedding, String>>,
}

/// Counters behind `GET /stats`.
#[derive(Default)]
pub struct BatchStats {
    /// Forward passes, failed ones and retried halves included.
    pub batches: u64,
    pub batched_texts: u64,
    pub score_batches: u64,
    pub failed_batches: u64,
    /// Texts whose waiter got an error after the halving retries.
    pub failed_texts: u64,
    /// Queue waits in milliseconds, the most recent `WAIT_WINDOW`.
    pub waits_ms: VecDeque<f64>,
}

const WAIT_WINDOW: usize = 10_000;

impl BatchStats {
    fn record_wait(&mut self, ms: f64) {
        if self.waits_ms.len() == WAIT_WINDOW {
            self.waits_ms.pop_front();
        }
        self.waits_ms.push_back(ms);
    }

    /// The `q`-quantile (0..=1) of recent queue waits, nearest rank.
    pub fn wait_quantile(&self, q: f64) -> Option<f64> {
        if self.waits_ms.is_empty() {
            return None;
        }
        let mut v: Vec<f64> = self.waits_ms.iter().copied().collect();
        v.sort_by(f64::total_cmp);
        let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
        Some(v[rank - 1])
    }
}

/// The batcher's two inputs.
pub struct Queues {
    /// `/score`: served first.
    pub score: mpsc::Receiver<Job>,
    /// `/encode`: served when no `/score` text waits.
    pub encode: mpsc::Receiver<Job>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Lane {
    Score,
    Encode,
}

pub struct Batcher {
    queues: Queues,
    encoder: Arc<LlamaEncoder>,
    cache: Arc<EmbeddingCache>,
    stats: Arc<Mutex<BatchStats>>,
    limits: BatchLimits,
    /// The current round of each lane, cut into batches.
    ready: [VecDeque<Vec<Job>>; 2],
}

impl Batcher {
    pub fn new(
        queues: Queues,
        encoder: Arc<LlamaEncoder>,
        cache: Arc<EmbeddingCache>,
        stats: Arc<Mutex<BatchStats>>,
        limits: BatchLimits,
    ) -> Self {
        Batcher {
            queues,
            encoder,
            cache,
            stats,
            limits,
            ready: [VecDeque::new(), VecDeque::new()],
        }
    }

    /// Runs until every sender of both queues is gone and nothing is left.
    pub async fn run(mut self) {
        while let Some((lane, batch)) = self.next_batch().await {
            self.process(lane, batch).await;
        }
    }

    fn rx(&mut self, lane: Lane) -> &mut mpsc::Receiver<Job> {
        match lane {
            Lane::Score => &mut self.queues.score,
            Lane::Encode => &mut self.queues.encode,
        }
    }

    async fn next_batch(&mut self) -> Option<(Lane, Vec<Job>)> {
        loop {
            for lane in [Lane::Score, Lane::Encode] {
                if self.ready[lane as usize].is_empty() {
                    let mut round = Vec::new();
                    self.drain(lane, &mut round);
                    self.cut_round(lane, round);
                }
                if let Some(batch) = self.ready[lane as usize].pop_front() {
                    return Some((lane, batch));
                }
            }
            // Idle: wait for a first text, search first, then linger for company.
            let (lane, first) = tokio::select! {
                biased;
                Some(job) = self.queues.score.recv() => (Lane::Score, job),
                Some(job) = self.queues.encode.recv() => (Lane::Encode, job),
                else => return None,
            };
            let mut round = vec![first];
            let deadline = tokio::time::Instant::now() + self.limits.linger;
            while round.len() < self.limits.max_batch && !self.limits.linger.is_zero() {
                match tokio::time::timeout_at(deadline, self.rx(lane).recv()).await {
                    Ok(Some(job)) => round.push(job),
                    Ok(None) | Err(_) => break,
                }
            }
            self.drain(lane, &mut round);
            self.cut_round(lane, round);
        }
    }

    /// Everything waiting in `lane` right now, up to a round's cap.
    fn drain(&mut self, lane: Lane, round: &mut Vec<Job>) {
        let cap = self.limits.max_batch.saturating_mul(64);
        while round.len() < cap {
            match self.rx(lane).try_recv() {
                Ok(job) => round.push(job),
                Err(_) => break,
            }
        }
    }

    fn cut_round(&mut self, lane: Lane, mut round: Vec<Job>) {
        round.sort_by_key(|j| j.ids.len());
        let lengths: Vec<usize> = round.iter().map(|j| j.ids.len()).collect();
        let mut jobs = round.into_iter();
        for range in cut_batches(&lengths, &self.limits) {
            self.ready[lane as usize].push_back(jobs.by_ref().take(range.len()).collect());
        }
    }

    /// Runs `batch`, retrying a failed forward pass in halves down to single texts.
    async fn process(&self, lane: Lane, batch: Vec<Job>) {
        let started = Instant::now();
        {
            let mut stats = self.stats.lock().unwrap_or_else(|p| p.into_inner());
            for job in &batch {
                stats.record_wait(started.duration_since(job.enqueued).as_secs_f64() * 1e3);
            }
        }
        let mut work = vec![batch];
        while let Some(batch) = work.pop() {
            let count = batch.len();
            let result = self.forward(&batch).await;
            {
                let mut stats = self.stats.lock().unwrap_or_else(|p| p.into_inner());
                stats.batches += 1;
                stats.batched_texts += count as u64;
                stats.score_batches += u64::from(lane == Lane::Score);
                stats.failed_batches += u64::from(result.is_err());
                stats.failed_texts += u64::from(result.is_err() && count == 1);
            }
            match result {
                Ok(rows) => {
                    for (job, emb) in batch.into_iter().zip(rows) {
                        self.cache.put(job.text, Arc::clone(&emb));
                        // The client may have gone away; nothing to do then.
                        let _ = job.reply.send(Ok(emb));
                    }
                }
                Err(message) if count > 1 => {
                    tracing::warn!(%message, count, "forward pass failed; retrying in halves");
                    let mut first = batch;
                    let second = first.split_off(count / 2);
                    work.push(second);
                    work.push(first);
                }
                Err(message) => {
                    tracing::error!(%message, "forward pass failed for a single text");
                    for job in batch {
                        let _ = job.reply.send(Err(message.clone()));
                    }
                }
            }
        }
        tracing::debug!(ms = started.elapsed().as_secs_f64() * 1e3, "batch done");
    }

    /// One forward pass; a non-finite embedding is a failure like any other.
    async fn forward(&self, batch: &[Job]) -> Result<Vec<Embedding>, String> {
        let ids: Vec<Vec<u32>> = batch.iter().map(|j| j.ids.clone()).collect();
        let encoder = Arc::clone(&self.encoder);
        let rows = tokio::task::spawn_blocking(move || -> Result<Vec<Vec<f32>>, String> {
            let t = encoder.encode_ids(&ids).map_err(|e| e.to_string())?;
            t.to_vec2::<f32>().map_err(|e| e.to_string())
        })
        .await
        .unwrap_or_else(|e| Err(format!("encoder task failed: {e}")))?;
        if let Some(i) = rows.iter().position(|r| r.iter().any(|x| !x.is_finite())) {
            return Err(format!(
                "the embedding of a {}-token text is not finite (NaN or inf)",
                batch[i].ids.len()
            ));
        }
        Ok(rows.into_iter().map(Embedding::from).collect())
    }
}

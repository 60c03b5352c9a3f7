//! Dynamic batching: one queue of single texts; a task forms batches by linger time, batch
//! size and padded-token budget, and runs each forward pass on the blocking thread pool so
//! the async runtime keeps accepting requests meanwhile.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use crate::cache::{Embedding, EmbeddingCache};
use crate::llama_encoder::LlamaEncoder;

#[derive(Clone, Debug)]
pub struct BatchLimits {
    /// How long the first text of a batch waits for company. Zero: take only what is queued.
    pub linger: Duration,
    pub max_batch: usize,
    /// Cap on `batch size x longest sequence` (the padded tokens of one forward pass).
    pub max_batch_tokens: usize,
}

/// One text waiting for its embedding.
pub struct Job {
    pub text: String,
    pub ids: Vec<u32>,
    pub enqueued: Instant,
    pub reply: oneshot::Sender<Result<Embedding, String>>,
}

/// Counters behind `GET /stats`.
#[derive(Default)]
pub struct BatchStats {
    pub batches: u64,
    pub batched_texts: u64,
    pub failed_batches: u64,
    /// Queue waits in milliseconds, the most recent `WAIT_WINDOW`.
    pub waits_ms: std::collections::VecDeque<f64>,
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

/// Padded tokens of a batch whose longest sequence has `longest` tokens.
fn padded_tokens(count: usize, longest: usize) -> usize {
    count * longest
}

pub struct Batcher {
    rx: mpsc::Receiver<Job>,
    encoder: Arc<LlamaEncoder>,
    cache: Arc<EmbeddingCache>,
    stats: Arc<Mutex<BatchStats>>,
    limits: BatchLimits,
    /// A job that did not fit the previous batch's token budget; it opens the next one.
    carry: Option<Job>,
}

impl Batcher {
    pub fn new(
        rx: mpsc::Receiver<Job>,
        encoder: Arc<LlamaEncoder>,
        cache: Arc<EmbeddingCache>,
        stats: Arc<Mutex<BatchStats>>,
        limits: BatchLimits,
    ) -> Self {
        Batcher {
            rx,
            encoder,
            cache,
            stats,
            limits,
            carry: None,
        }
    }

    /// Runs until every sender is gone.
    pub async fn run(mut self) {
        while let Some(batch) = self.next_batch().await {
            self.process(batch).await;
        }
    }

    async fn next_batch(&mut self) -> Option<Vec<Job>> {
        let first = match self.carry.take() {
            Some(job) => job,
            None => self.rx.recv().await?,
        };
        let deadline = tokio::time::Instant::now() + self.limits.linger;
        let mut longest = first.ids.len();
        let mut batch = vec![first];
        while batch.len() < self.limits.max_batch {
            let job = match self.rx.try_recv() {
                Ok(job) => job,
                Err(mpsc::error::TryRecvError::Disconnected) => break,
                Err(mpsc::error::TryRecvError::Empty) => {
                    if self.limits.linger.is_zero() {
                        break;
                    }
                    match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                        Ok(Some(job)) => job,
                        Ok(None) | Err(_) => break,
                    }
                }
            };
            let new_longest = longest.max(job.ids.len());
            if padded_tokens(batch.len() + 1, new_longest) > self.limits.max_batch_tokens {
                self.carry = Some(job);
                break;
            }
            longest = new_longest;
            batch.push(job);
        }
        Some(batch)
    }

    async fn process(&self, batch: Vec<Job>) {
        let started = Instant::now();
        {
            let mut stats = self.stats.lock().unwrap_or_else(|p| p.into_inner());
            for job in &batch {
                stats.record_wait(started.duration_since(job.enqueued).as_secs_f64() * 1e3);
            }
        }
        let ids: Vec<Vec<u32>> = batch.iter().map(|j| j.ids.clone()).collect();
        let encoder = Arc::clone(&self.encoder);
        let result = tokio::task::spawn_blocking(move || -> Result<Vec<Vec<f32>>, String> {
            let t = encoder.encode_ids(&ids).map_err(|e| e.to_string())?;
            t.to_vec2::<f32>().map_err(|e| e.to_string())
        })
        .await
        .unwrap_or_else(|e| Err(format!("encoder task failed: {e}")));
        let count = batch.len();
        match result {
            Ok(rows) => {
                for (job, row) in batch.into_iter().zip(rows) {
                    let emb: Embedding = row.into();
                    self.cache.put(job.text, Arc::clone(&emb));
                    // The client may have gone away; nothing to do then.
                    let _ = job.reply.send(Ok(emb));
                }
            }
            Err(message) => {
                tracing::error!(%message, count, "forward pass failed");
                self.stats
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .failed_batches += 1;
                for job in batch {
                    let _ = job.reply.send(Err(message.clone()));
                }
            }
        }
        let mut stats = self.stats.lock().unwrap_or_else(|p| p.into_inner());
        stats.batches += 1;
        stats.batched_texts += count as u64;
        tracing::debug!(
            count,
            ms = started.elapsed().as_secs_f64() * 1e3,
            "batch done"
        );
    }
}

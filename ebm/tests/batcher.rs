//! Batch formation limits, driven directly (jobs queued before the batcher starts, so the
//! batch boundaries do not depend on timing).

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use candle_core::Device;
use ebm::batcher::{BatchLimits, BatchStats, Batcher, Job};
use ebm::cache::EmbeddingCache;
use ebm::LlamaEncoder;
use tokio::sync::{mpsc, oneshot};

async fn run(texts: &[String], limits: BatchLimits) -> (Vec<Vec<f32>>, u64, usize) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/tiny-llama");
    let encoder = Arc::new(LlamaEncoder::load(&dir, &Device::Cpu).unwrap());
    let cache = Arc::new(EmbeddingCache::new(100));
    let stats = Arc::new(Mutex::new(BatchStats::default()));
    let (tx, rx) = mpsc::channel(64);
    let mut replies = Vec::new();
    for text in texts {
        let (reply, rx) = oneshot::channel();
        let ids = encoder.tokenize(text).unwrap();
        tx.send(Job {
            text: text.clone(),
            ids,
            enqueued: Instant::now(),
            reply,
        })
        .await
        .unwrap();
        replies.push(rx);
    }
    drop(tx);
    Batcher::new(
        rx,
        Arc::clone(&encoder),
        Arc::clone(&cache),
        Arc::clone(&stats),
        limits,
    )
    .run()
    .await;
    let mut out = Vec::new();
    for r in replies {
        out.push(r.await.unwrap().unwrap().to_vec());
    }
    let batches = stats.lock().unwrap().batches;
    (out, batches, cache.len())
}

fn texts(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("⊢ {i} + {i} = {}", 2 * i)).collect()
}

#[tokio::test]
async fn max_batch_caps_each_forward_pass() {
    let limits = BatchLimits {
        linger: Duration::ZERO,
        max_batch: 3,
        max_batch_tokens: 1 << 20,
    };
    let (out, batches, cached) = run(&texts(7), limits).await;
    assert_eq!((out.len(), batches, cached), (7, 3, 7));
}

#[tokio::test]
async fn token_budget_splits_batches_and_results_stay_in_order() {
    let all = texts(6);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/tiny-llama");
    let encoder = LlamaEncoder::load(&dir, &Device::Cpu).unwrap();
    let longest = all
        .iter()
        .map(|t| encoder.tokenize(t).unwrap().len())
        .max()
        .unwrap();
    // Room for two padded sequences per pass.
    let limits = BatchLimits {
        linger: Duration::ZERO,
        max_batch: 64,
        max_batch_tokens: 2 * longest,
    };
    let (out, batches, _) = run(&all, limits).await;
    assert_eq!(batches, 3);
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    let direct: Vec<Vec<f32>> = encoder.encode(&refs).unwrap().to_vec2().unwrap();
    for (a, b) in out.iter().zip(&direct) {
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() <= 1e-5 * y.abs().max(1.0));
        }
    }
}

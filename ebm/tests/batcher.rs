//! Batch formation, driven directly (jobs queued before the batcher starts, so the batch
//! boundaries do not depend on timing).

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use candle_core::Device;
use ebm::batcher::{cut_batches, BatchLimits, BatchStats, Batcher, Job, Queues};
use ebm::cache::EmbeddingCache;
use ebm::LlamaEncoder;
use tokio::sync::{mpsc, oneshot};

fn encoder() -> Arc<LlamaEncoder> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/tiny-llama");
    Arc::new(LlamaEncoder::load(&dir, &Device::Cpu).unwrap())
}

fn limits(
    max_batch: usize,
    max_batch_tokens: usize,
    max_batch_square_tokens: usize,
) -> BatchLimits {
    BatchLimits {
        linger: Duration::ZERO,
        max_batch,
        max_batch_tokens,
        max_batch_square_tokens,
    }
}

/// Queues `score` and `encode` texts, runs the batcher to the end, and returns each text's
/// embedding, the labels in the order their replies arrived ("s3", "e0", ...), and the stats.
async fn run(
    encoder: &Arc<LlamaEncoder>,
    score: &[String],
    encode: &[String],
    limits: BatchLimits,
) -> (Vec<Vec<f32>>, Vec<String>, BatchStats) {
    let cache = Arc::new(EmbeddingCache::new(100));
    let stats = Arc::new(Mutex::new(BatchStats::default()));
    let (score_tx, score_rx) = mpsc::channel(256);
    let (encode_tx, encode_rx) = mpsc::channel(256);
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut waiters = Vec::new();
    for (prefix, texts, tx) in [("s", score, &score_tx), ("e", encode, &encode_tx)] {
        for (i, text) in texts.iter().enumerate() {
            let (reply, rx) = oneshot::channel();
            tx.send(Job {
                text: text.clone(),
                ids: encoder.tokenize(text).unwrap(),
                enqueued: Instant::now(),
                reply,
            })
            .await
            .unwrap();
            let order = Arc::clone(&order);
            let label = format!("{prefix}{i}");
            waiters.push(tokio::spawn(async move {
                let emb = rx.await.unwrap().unwrap();
                order.lock().unwrap().push(label);
                emb.to_vec()
            }));
        }
    }
    drop((score_tx, encode_tx));
    let queues = Queues {
        score: score_rx,
        encode: encode_rx,
    };
    Batcher::new(
        queues,
        Arc::clone(encoder),
        cache,
        Arc::clone(&stats),
        limits,
    )
    .run()
    .await;
    let mut out = Vec::new();
    for w in waiters {
        out.push(w.await.unwrap());
    }
    let order = order.lock().unwrap().clone();
    let stats = std::mem::take(&mut *stats.lock().unwrap());
    (out, order, stats)
}

fn texts(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("⊢ {i} + {i} = {}", 2 * i)).collect()
}

fn assert_rows_close(a: &[Vec<f32>], b: &[Vec<f32>]) {
    for (x, y) in a.iter().zip(b) {
        for (p, q) in x.iter().zip(y) {
            assert!((p - q).abs() <= 1e-5 * q.abs().max(1.0), "{p} vs {q}");
        }
    }
}

#[tokio::test]
async fn max_batch_caps_each_forward_pass() {
    let encoder = encoder();
    let (out, _, stats) = run(&encoder, &[], &texts(7), limits(3, 1 << 20, 1 << 30)).await;
    assert_eq!((out.len(), stats.batches), (7, 3));
}

#[tokio::test]
async fn token_budget_splits_batches_and_results_stay_in_order() {
    let encoder = encoder();
    let all = texts(6);
    let longest = all
        .iter()
        .map(|t| encoder.tokenize(t).unwrap().len())
        .max()
        .unwrap();
    // Room for two padded sequences per pass.
    let (out, _, stats) = run(&encoder, &[], &all, limits(64, 2 * longest, 1 << 30)).await;
    assert_eq!(stats.batches, 3);
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    assert_rows_close(&out, &encoder.encode(&refs).unwrap().to_vec2().unwrap());
}

#[test]
fn cuts_respect_all_three_limits_and_a_long_text_goes_alone() {
    // b <= 3, b·t <= 40, b·t² <= 400.
    let l = limits(3, 40, 400);
    assert_eq!(cut_batches(&[2, 2, 2, 2], &l), vec![0..3, 3..4]);
    // 3·14 = 42 > 40 tokens; 3·12² = 432 > 400 squared tokens.
    assert_eq!(cut_batches(&[14, 14, 14], &l), vec![0..2, 2..3]);
    assert_eq!(cut_batches(&[12, 12, 12], &l), vec![0..2, 2..3]);
    assert_eq!(cut_batches(&[11, 11, 11], &l), vec![0..3]);
    // 4·15² = 900 > 400 but 1·15² fits; 25² = 625 > 400 fits no company and goes alone.
    assert_eq!(cut_batches(&[15, 25, 5], &l), vec![0..1, 1..2, 2..3]);
    assert!(cut_batches(&[], &l).is_empty());
    for (count, longest) in [(3, 2), (2, 10), (1, 20)] {
        assert!(l.fits(count, longest));
    }
    assert!(!l.fits(3, 14) && !l.fits(2, 15) && !l.fits(4, 1));
}

#[test]
fn grouping_by_length_pads_less() {
    // Alternating long and short: in arrival order every batch pads to the long one.
    let lengths: Vec<usize> = (0..16).map(|i| if i % 2 == 0 { 300 } else { 20 }).collect();
    let l = limits(4, 1 << 20, 1 << 30);
    let padded = |lens: &[usize]| -> usize {
        cut_batches(lens, &l)
            .into_iter()
            .map(|r| r.len() * lens[r].iter().max().unwrap())
            .sum()
    };
    let mut sorted = lengths.clone();
    sorted.sort();
    assert_eq!(padded(&lengths), 16 * 300);
    assert_eq!(padded(&sorted), 8 * 20 + 8 * 300);
}

#[tokio::test]
async fn the_batcher_sorts_a_round_by_length() {
    let encoder = encoder();
    let short = texts(4);
    let long: Vec<String> = (0..4)
        .map(|i| format!("{}⊢ {i} = {i}", "∀ ∃ ".repeat(20)))
        .collect();
    let mixed: Vec<String> = short
        .iter()
        .zip(&long)
        .flat_map(|(s, l)| [s.clone(), l.clone()])
        .collect();
    let (out, order, stats) = run(&encoder, &[], &mixed, limits(4, 1 << 20, 1 << 30)).await;
    assert_eq!(stats.batches, 2);
    // The four short ones (even indices) answered first, as one batch.
    let first: std::collections::HashSet<&str> = order[..4].iter().map(String::as_str).collect();
    assert_eq!(first, ["e0", "e2", "e4", "e6"].into_iter().collect());
    let refs: Vec<&str> = mixed.iter().map(String::as_str).collect();
    let direct: Vec<Vec<f32>> = refs
        .iter()
        .map(|t| encoder.encode(&[t]).unwrap().to_vec2().unwrap().remove(0))
        .collect();
    assert_rows_close(&out, &direct);
}

#[tokio::test]
async fn score_goes_before_encode() {
    let encoder = encoder();
    let encode = texts(6);
    let score: Vec<String> = (0..2).map(|i| format!("⊢ score {i}")).collect();
    let (_, order, stats) = run(&encoder, &score, &encode, limits(2, 1 << 20, 1 << 30)).await;
    assert_eq!(stats.batches, 4);
    assert_eq!(stats.score_batches, 1);
    let first: std::collections::HashSet<&str> = order[..2].iter().map(String::as_str).collect();
    assert_eq!(first, ["s0", "s1"].into_iter().collect(), "{order:?}");
}

//! States per second and peak memory of the encoder on a length mix like real goals (100 to
//! 3000 tokens, log-uniform), with batches cut in arrival order and after sorting by length
//! (what the server's batcher does), on the committed tiny Llama on CPU. Then the peak the
//! memory formula predicts for DeepSeek-Prover-V2-7B at the server's default limits.
//!
//!     cargo bench -p ebm --bench length_mix [-- STATES]
//!
//! Peak memory is the high-water mark of live heap bytes during the run, from a counting
//! global allocator (weights loaded before counting starts).

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use candle_core::{DType, Device};
use ebm::batcher::{cut_batches, BatchLimits};
use ebm::forward_memory::{forward_memory, weight_bytes, worst_case_peak};
use ebm::llama_config::LlamaConfig;
use ebm::llama_encoder::DEFAULT_ATTENTION_BUDGET;
use ebm::{LlamaEncoder, ServerOptions};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);
static HIGH: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            HIGH.fetch_max(live, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        System.dealloc(p, layout);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const GIB: f64 = (1u64 << 30) as f64;
const MIB: f64 = (1u64 << 20) as f64;

/// DeepSeek-Prover-V2-7B's shape (DeepSeek-Prover-V1.5-Base's config.json, which V2-7B is
/// built on; see docs/performance.md for the caveat).
const PROVER_7B: &str = r#"{"vocab_size": 102400, "hidden_size": 4096, "intermediate_size": 11008,
    "num_hidden_layers": 30, "num_attention_heads": 32, "num_key_value_heads": 32,
    "max_position_embeddings": 4096, "rms_norm_eps": 1e-6, "rope_theta": 10000,
    "model_type": "llama", "hidden_act": "silu"}"#;

fn run(encoder: &LlamaEncoder, ids: &[Vec<u32>], limits: &BatchLimits) -> (f64, f64, usize) {
    let lengths: Vec<usize> = ids.iter().map(Vec::len).collect();
    let batches = cut_batches(&lengths, limits);
    let base = LIVE.load(Ordering::SeqCst);
    HIGH.store(base, Ordering::SeqCst);
    let start = Instant::now();
    for range in &batches {
        encoder
            .encode_ids(&ids[range.clone()])
            .expect("forward pass");
    }
    let secs = start.elapsed().as_secs_f64();
    let peak = HIGH.load(Ordering::SeqCst) - base;
    (ids.len() as f64 / secs, peak as f64 / MIB, batches.len())
}

fn main() {
    let states: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(48);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/tiny-llama");
    let budget = 256 << 20;
    let encoder = LlamaEncoder::load(&dir, &Device::Cpu)
        .expect("tiny model")
        .with_attention_budget(budget);
    let vocab = encoder.config().vocab_size as u32;
    let mut rng = StdRng::seed_from_u64(1);
    let ids: Vec<Vec<u32>> = (0..states)
        .map(|_| {
            let len = (rng.random_range(100f64.ln()..3000f64.ln())).exp() as usize;
            std::iter::once(0)
                .chain((1..len).map(|_| rng.random_range(3..vocab)))
                .collect()
        })
        .collect();
    let limits = BatchLimits {
        linger: std::time::Duration::ZERO,
        max_batch: 16,
        max_batch_tokens: 12_288,
        max_batch_square_tokens: 4 * 3000 * 3000,
    };
    let mut sorted = ids.clone();
    sorted.sort_by_key(Vec::len);
    let total: usize = ids.iter().map(Vec::len).sum();
    println!(
        "tiny Llama (hidden 64, 2 layers, 4 heads), CPU, {states} states of 100-3000 tokens \
         (log-uniform, mean {:.0}), limits: batch {} / {} tokens / {} squared tokens, \
         attention chunk {} MiB",
        total as f64 / states as f64,
        limits.max_batch,
        limits.max_batch_tokens,
        limits.max_batch_square_tokens,
        budget >> 20
    );
    println!(
        "{:<16} {:>8} {:>10} {:>14} {:>22}",
        "order", "batches", "states/s", "peak heap MiB", "formula peak MiB (max)"
    );
    let predicted_max = |list: &[Vec<u32>]| -> f64 {
        let lengths: Vec<usize> = list.iter().map(Vec::len).collect();
        cut_batches(&lengths, &limits)
            .into_iter()
            .map(|r| {
                let t = lengths[r.clone()].iter().copied().max().unwrap_or(0);
                forward_memory(encoder.config(), encoder.dtype(), r.len(), t, budget).peak_bytes
            })
            .max()
            .unwrap_or(0) as f64
            / MIB
    };
    // Warm-up (matmul buffers, page faults), then the two orders.
    run(&encoder, &sorted[..2], &limits);
    for (name, list) in [("arrival order", &ids), ("sorted by length", &sorted)] {
        let (rate, peak, batches) = run(&encoder, list, &limits);
        println!(
            "{:<16} {:>8} {:>10.1} {:>14.1} {:>22.1}",
            name,
            batches,
            rate,
            peak,
            predicted_max(list)
        );
    }

    let config = LlamaConfig::from_json(PROVER_7B, Path::new("DeepSeek-Prover-V2-7B/config.json"))
        .expect("7B config");
    let defaults = ServerOptions::default();
    let (b, l) = (&defaults.batch, &defaults.limits);
    let (peak, pb, pt) = worst_case_peak(
        &config,
        DType::BF16,
        b.max_batch,
        b.max_batch_tokens,
        b.max_batch_square_tokens,
        l.max_text_tokens,
        DEFAULT_ATTENTION_BUDGET,
    );
    let unchunked = forward_memory(&config, DType::BF16, pb, pt, usize::MAX);
    println!(
        "\nDeepSeek-Prover-V2-7B, bf16, default limits (batch {}, {} tokens, {} squared tokens, \
         texts <= {} tokens, attention chunk {} GiB):",
        b.max_batch,
        b.max_batch_tokens,
        b.max_batch_square_tokens,
        l.max_text_tokens,
        DEFAULT_ATTENTION_BUDGET >> 30
    );
    println!(
        "  weights {:.1} GiB; worst batch {pb} x {pt} tokens: {} heads per chunk, mask {:.1} GiB, \
         one chunk's scores {:.1} GiB, activation peak {:.1} GiB (total {:.1} GiB); \
         all 32 heads at once would peak at {:.1} GiB",
        weight_bytes(&config, DType::BF16) as f64 / GIB,
        peak.heads_per_chunk,
        peak.mask_bytes as f64 / GIB,
        peak.score_tensor_bytes as f64 / GIB,
        peak.peak_bytes as f64 / GIB,
        (peak.peak_bytes + weight_bytes(&config, DType::BF16)) as f64 / GIB,
        unchunked.peak_bytes as f64 / GIB,
    );
}

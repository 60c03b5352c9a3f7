//! The peak-memory formula of `forward_memory` against what the encoder really allocates on
//! the CPU: a counting global allocator records the largest single allocation and the
//! high-water mark of live bytes during one forward pass of the largest batch the server's
//! limits allow. One test in its own binary, so no other test allocates meanwhile.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use candle_core::Device;
use ebm::batcher::{cut_batches, BatchLimits};
use ebm::forward_memory::{forward_memory, worst_case_peak, SCORE_BYTES};
use ebm::LlamaEncoder;

struct Counting;

static ON: AtomicBool = AtomicBool::new(false);
static LIVE: AtomicUsize = AtomicUsize::new(0);
static HIGH: AtomicUsize = AtomicUsize::new(0);
static LARGEST: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() && ON.load(Ordering::Relaxed) {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            HIGH.fetch_max(live, Ordering::Relaxed);
            LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        System.dealloc(p, layout);
        if ON.load(Ordering::Relaxed) {
            // Blocks allocated before counting started may be freed now: saturate at 0.
            let _ = LIVE.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |l| {
                Some(l.saturating_sub(layout.size()))
            });
        }
    }
    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let q = System.realloc(p, layout, new_size);
        if !q.is_null() && ON.load(Ordering::Relaxed) {
            if new_size >= layout.size() {
                let grow = new_size - layout.size();
                let live = LIVE.fetch_add(grow, Ordering::Relaxed) + grow;
                HIGH.fetch_max(live, Ordering::Relaxed);
            } else {
                let shrink = layout.size() - new_size;
                let _ = LIVE.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |l| {
                    Some(l.saturating_sub(shrink))
                });
            }
            LARGEST.fetch_max(new_size, Ordering::Relaxed);
        }
        q
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// (largest single allocation, high-water of live bytes) while `f` runs.
fn measure<T>(f: impl FnOnce() -> T) -> (usize, usize, T) {
    LIVE.store(0, Ordering::SeqCst);
    HIGH.store(0, Ordering::SeqCst);
    LARGEST.store(0, Ordering::SeqCst);
    ON.store(true, Ordering::SeqCst);
    let out = f();
    ON.store(false, Ordering::SeqCst);
    (
        LARGEST.load(Ordering::SeqCst),
        HIGH.load(Ordering::SeqCst),
        out,
    )
}

#[test]
fn the_largest_batch_stays_within_the_formula_and_the_attention_budget() {
    // One matmul thread, so which threads have warmed their buffers is deterministic.
    std::env::set_var("RAYON_NUM_THREADS", "1");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/tiny-llama");
    let max_text_tokens = 200;
    // Small limits: up to 6 texts, 600 padded tokens, 6·100² squared tokens; scores for two
    // of the four heads at a time for the largest batch.
    let limits = BatchLimits {
        linger: std::time::Duration::ZERO,
        max_batch: 6,
        max_batch_tokens: 600,
        max_batch_square_tokens: 60_000.max(max_text_tokens * max_text_tokens),
    };
    let probe = LlamaEncoder::load(&dir, &Device::Cpu).unwrap();
    let (worst, b, t) = worst_case_peak(
        probe.config(),
        probe.dtype(),
        limits.max_batch,
        limits.max_batch_tokens,
        limits.max_batch_square_tokens,
        max_text_tokens,
        usize::MAX,
    );
    let budget = SCORE_BYTES * b * t * t * 2;
    let encoder = probe.with_attention_budget(budget);
    let (worst, b, t) = {
        let (w, b2, t2) = worst_case_peak(
            encoder.config(),
            encoder.dtype(),
            limits.max_batch,
            limits.max_batch_tokens,
            limits.max_batch_square_tokens,
            max_text_tokens,
            budget,
        );
        assert!(
            w.peak_bytes <= worst.peak_bytes,
            "chunking can only lower the peak"
        );
        (w, b2, t2)
    };
    assert!(b > 1 && worst.heads_per_chunk == 2, "{worst:?} b={b} t={t}");
    assert!(SCORE_BYTES * b * worst.heads_per_chunk * t * t <= budget);

    // The batcher would form exactly this batch from b texts of t tokens (plus one more that
    // does not fit), so it is a batch the server really runs.
    let lengths = vec![t; b + 1];
    assert_eq!(cut_batches(&lengths, &limits)[0], 0..b);
    let vocab = encoder.config().vocab_size as u32;
    let ids: Vec<Vec<u32>> = (0..b)
        .map(|i| {
            (0..t as u32)
                .map(|j| (j * 7 + i as u32 * 13) % vocab)
                .collect()
        })
        .collect();

    // A first pass outside the count: candle's matmul (gemm) keeps per-thread packing
    // buffers of a fixed size (1 MiB here) that are allocated once and reused.
    encoder.encode_ids(&ids).unwrap();
    let (largest, high, out) = measure(|| encoder.encode_ids(&ids).unwrap());
    assert_eq!(out.dims2().unwrap(), (b, 64));
    let predicted = forward_memory(encoder.config(), encoder.dtype(), b, t, budget);
    assert_eq!(predicted, worst);
    eprintln!(
        "b={b} t={t} chunk={} largest={largest} predicted_tensor={} high={high} predicted_peak={}",
        predicted.heads_per_chunk, predicted.score_tensor_bytes, predicted.peak_bytes
    );
    // The largest allocation is one chunk's f32 scores, exactly as predicted...
    assert_eq!(largest, predicted.score_tensor_bytes);
    // ...and all live memory together stays under the formula, which is not loose by more
    // than half.
    assert!(
        high <= predicted.peak_bytes,
        "{high} > {}",
        predicted.peak_bytes
    );
    assert!(
        2 * high >= predicted.peak_bytes,
        "{high} vs {}",
        predicted.peak_bytes
    );

    // Without chunking the same batch allocates all heads' scores at once: the budget is what
    // bounds it.
    let whole = encoder.with_attention_budget(usize::MAX);
    let (largest_whole, _, _) = measure(|| whole.encode_ids(&ids).unwrap());
    assert_eq!(largest_whole, 2 * predicted.score_tensor_bytes);
}

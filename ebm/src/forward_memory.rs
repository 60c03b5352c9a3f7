//! How much memory one forward pass of the encoder needs beyond its weights, as a formula of
//! the batch shape, and the attention chunking that keeps it bounded.
//!
//! With `b` texts padded to `t` tokens, `s` bytes per compute-dtype element, hidden size
//! `H`, `h` query heads of width `d`, MLP width `I`, and `c` heads per attention chunk:
//!
//! ```text
//! peak = 4·b·t²                             additive mask [b,1,t,t], f32, whole pass
//!      + max( 8·b·c·t²                      attention: one chunk's scores, an f32 input
//!             + s·b·t·(2·H + 4·h·d + 3·c·d),  and f32 output of a step (cast, + mask,
//!                                           softmax) beside the residual stream, the
//!                                           normed input, q, k, v (k, v repeated to h
//!                                           heads), the outputs so far and the chunk's
//!                                           q, k, v copies
//!             s·b·t·(2·H + 3·I),            MLP: residual, normed input, and silu(gate),
//!                                           up and their product at once
//!             8·b·t·H )                     pooling: the last hidden state in f32, twice
//! ```
//!
//! plus the matmul library's fixed workspace (candle's CPU gemm keeps 1 MiB per thread;
//! cuBLAS its own workspace), and whatever the allocator holds back. `c` is the largest head count whose scores fit the attention budget
//! (`8·b·c·t² <= budget`), at least 1; the batcher caps `b·t` and `b·t²`, so every batch it
//! forms has a bounded peak (`worst_case_peak`). The encoder frees each intermediate as soon
//! as the next exists, which is what makes the "two at a time" terms above true; the
//! `attention_memory` test checks the formula against the allocations it actually makes.

use candle_core::DType;

use crate::llama_config::LlamaConfig;

/// Bytes per attention-score element at the peak of a chunk: an f32 input and an f32 output
/// of one step are alive together.
pub const SCORE_BYTES: usize = 8;
/// Bytes per element of the f32 additive mask.
pub const MASK_BYTES: usize = 4;

/// Query heads per attention chunk for a batch of `b` sequences of `t` tokens: as many as fit
/// `budget` bytes of scores, at least one, at most all.
pub fn heads_per_chunk(config: &LlamaConfig, b: usize, t: usize, budget: usize) -> usize {
    let per_head = SCORE_BYTES * b * t * t;
    (budget / per_head.max(1)).clamp(1, config.num_attention_heads)
}

/// The terms of the formula for one batch shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ForwardMemory {
    /// Heads per attention chunk.
    pub heads_per_chunk: usize,
    /// One chunk's score tensor in f32, the largest single tensor of the pass when attention
    /// dominates: `4·b·c·t²`.
    pub score_tensor_bytes: usize,
    pub mask_bytes: usize,
    /// The peak of the whole pass beyond the weights.
    pub peak_bytes: usize,
}

/// The formula above for `b` sequences padded to `t` tokens.
pub fn forward_memory(
    config: &LlamaConfig,
    dtype: DType,
    b: usize,
    t: usize,
    attention_budget: usize,
) -> ForwardMemory {
    let s = dtype.size_in_bytes();
    let (hidden, inter) = (config.hidden_size, config.intermediate_size);
    let qdim = config.num_attention_heads * config.head_dim;
    let c = heads_per_chunk(config, b, t, attention_budget);
    let tokens = b * t;
    let mask = MASK_BYTES * b * t * t;
    let attention = SCORE_BYTES * b * c * t * t
        + s * tokens * (2 * hidden + 4 * qdim + 3 * c * config.head_dim);
    let mlp = s * tokens * (2 * hidden + 3 * inter);
    let pooling = 8 * tokens * hidden;
    ForwardMemory {
        heads_per_chunk: c,
        score_tensor_bytes: 4 * b * c * t * t,
        mask_bytes: mask,
        peak_bytes: mask + attention.max(mlp).max(pooling),
    }
}

/// The largest `forward_memory` peak over every batch a batcher with these caps can form
/// from texts of at most `max_text_tokens` tokens, and the shape `(b, t)` that reaches it.
pub fn worst_case_peak(
    config: &LlamaConfig,
    dtype: DType,
    max_batch: usize,
    max_batch_tokens: usize,
    max_batch_square_tokens: usize,
    max_text_tokens: usize,
    attention_budget: usize,
) -> (ForwardMemory, usize, usize) {
    (1..=max_text_tokens)
        .filter_map(|t| {
            let b = max_batch
                .min(max_batch_tokens / t)
                .min(max_batch_square_tokens / (t * t));
            (b > 0).then(|| (forward_memory(config, dtype, b, t, attention_budget), b, t))
        })
        .max_by_key(|(m, _, _)| m.peak_bytes)
        .unwrap_or_else(|| (forward_memory(config, dtype, 1, 1, attention_budget), 1, 1))
}

/// Bytes of the weights the encoder loads (no `lm_head`) in `dtype`.
pub fn weight_bytes(config: &LlamaConfig, dtype: DType) -> usize {
    let (h, i, d) = (
        config.hidden_size,
        config.intermediate_size,
        config.head_dim,
    );
    let attn = h * config.num_attention_heads * d * 2 + h * config.num_key_value_heads * d * 2;
    let per_layer = attn + 3 * h * i + 2 * h;
    (config.vocab_size * h + config.num_hidden_layers * per_layer + h) * dtype.size_in_bytes()
}

//! A Llama-family decoder used as an encoder: token ids in, the attention-masked mean of the
//! last hidden states (after the final RMSNorm, HF's `hidden_states[-1]`) out.
//!
//! Ours rather than candle-transformers', whose Llama returns only last-token logits. Follows
//! HF `LlamaModel` exactly: rotate-half rotary embeddings, grouped-query attention with
//! softmax in f32, causal + padding mask for right-padded batches, SiLU-gated MLP. `lm_head`
//! is never read.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor, D};
use candle_nn::{Embedding, Linear, Module, RmsNorm, VarBuilder};
use tokenizers::Tokenizer;

use crate::device::compute_dtype;
use crate::error::{EbmError, Result};
use crate::forward_memory::heads_per_chunk;
use crate::identity::encoder_identity;
use crate::llama_config::LlamaConfig;
use crate::tokenizer_config::apply_tokenizer_config;
use formats::identity::ModelIdentity;

struct Attention {
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
}

struct Mlp {
    gate: Linear,
    up: Linear,
    down: Linear,
}

struct Block {
    input_norm: RmsNorm,
    attention: Attention,
    post_norm: RmsNorm,
    mlp: Mlp,
}

pub struct LlamaEncoder {
    config: LlamaConfig,
    embed: Embedding,
    blocks: Vec<Block>,
    norm: RmsNorm,
    tokenizer: Tokenizer,
    device: Device,
    dtype: DType,
    /// Bytes one attention chunk's scores may take (`forward_memory`).
    attention_budget: usize,
    identity: ModelIdentity,
}

/// Default `attention_budget`: 4 GiB of scores per chunk.
pub const DEFAULT_ATTENTION_BUDGET: usize = 4 << 30;

/// A text's token ids as the model sees them, possibly shortened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tokens {
    pub ids: Vec<u32>,
    /// Tokens were cut from the front of the text to fit the limit.
    pub truncated: bool,
}

fn linear(in_dim: usize, out_dim: usize, bias: bool, vb: VarBuilder) -> Result<Linear> {
    Ok(if bias {
        candle_nn::linear(in_dim, out_dim, vb)?
    } else {
        candle_nn::linear_no_bias(in_dim, out_dim, vb)?
    })
}

impl Attention {
    fn load(c: &LlamaConfig, vb: VarBuilder) -> Result<Self> {
        let (h, d) = (c.hidden_size, c.head_dim);
        Ok(Attention {
            q: linear(
                h,
                c.num_attention_heads * d,
                c.attention_bias,
                vb.pp("q_proj"),
            )?,
            k: linear(
                h,
                c.num_key_value_heads * d,
                c.attention_bias,
                vb.pp("k_proj"),
            )?,
            v: linear(
                h,
                c.num_key_value_heads * d,
                c.attention_bias,
                vb.pp("v_proj"),
            )?,
            o: linear(
                c.num_attention_heads * d,
                h,
                c.attention_bias,
                vb.pp("o_proj"),
            )?,
            heads: c.num_attention_heads,
            kv_heads: c.num_key_value_heads,
            head_dim: d,
        })
    }

    /// `x` `[b, t, hidden]`, `mask` additive `[b, 1, t, t]` (f32), cos/sin `[t, head_dim/2]`.
    /// Attention runs `chunk` query heads at a time (see `forward_memory`), and every
    /// intermediate is its own statement so it is freed as soon as the next one exists.
    fn forward(
        &self,
        x: &Tensor,
        mask: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        chunk: usize,
    ) -> Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        let split = |y: Tensor, n: usize| -> Result<Tensor> {
            Ok(y.reshape((b, t, n, self.head_dim))?
                .transpose(1, 2)?
                .contiguous()?)
        };
        let q = then(split(self.q.forward(x)?, self.heads)?, |q| {
            candle_nn::rotary_emb::rope(q, cos, sin)
        })?;
        let k = then(split(self.k.forward(x)?, self.kv_heads)?, |k| {
            candle_nn::rotary_emb::rope(k, cos, sin)
        })?;
        let k = self.repeat_kv(k)?;
        let v = self.repeat_kv(split(self.v.forward(x)?, self.kv_heads)?)?;
        let scale = 1.0 / (self.head_dim as f64).sqrt();
        let mut outs = Vec::with_capacity(self.heads.div_ceil(chunk));
        for start in (0..self.heads).step_by(chunk) {
            let n = chunk.min(self.heads - start);
            let qc = q.narrow(1, start, n)?.contiguous()?;
            let kc = k.narrow(1, start, n)?.contiguous()?;
            let vc = v.narrow(1, start, n)?.contiguous()?;
            // HF's order: matmul, scale, f32, + mask, softmax, back to the compute dtype.
            let scores = then(qc.matmul(&kc.t()?)?, |x| x * scale)?;
            drop((qc, kc));
            let scores = then(scores, |x| x.to_dtype(DType::F32))?;
            let scores = then(scores, |x| x.broadcast_add(mask))?;
            let probs = then(scores, candle_nn::ops::softmax_last_dim)?;
            let probs = then(probs, |x| x.to_dtype(vc.dtype()))?;
            outs.push(probs.matmul(&vc)?);
        }
        drop((q, k, v));
        let out = Tensor::cat(&outs, 1)?;
        drop(outs);
        let out = out
            .transpose(1, 2)?
            .reshape((b, t, self.heads * self.head_dim))?;
        Ok(self.o.forward(&out)?)
    }

    /// Query head `i` reads key/value head `i / (heads / kv_heads)`, as HF's `repeat_kv`.
    fn repeat_kv(&self, x: Tensor) -> Result<Tensor> {
        let rep = self.heads / self.kv_heads;
        if rep == 1 {
            return Ok(x);
        }
        let (b, kv, t, d) = x.dims4()?;
        Ok(x.unsqueeze(2)?
            .expand((b, kv, rep, t, d))?
            .reshape((b, kv * rep, t, d))?)
    }
}

impl Mlp {
    fn load(c: &LlamaConfig, vb: VarBuilder) -> Result<Self> {
        let (h, i) = (c.hidden_size, c.intermediate_size);
        Ok(Mlp {
            gate: linear(h, i, c.mlp_bias, vb.pp("gate_proj"))?,
            up: linear(h, i, c.mlp_bias, vb.pp("up_proj"))?,
            down: linear(i, h, c.mlp_bias, vb.pp("down_proj"))?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let gate = candle_nn::ops::silu(&self.gate.forward(x)?)?;
        let up = self.up.forward(x)?;
        let gated = (gate * up)?;
        Ok(self.down.forward(&gated)?)
    }
}

impl Block {
    fn load(c: &LlamaConfig, vb: VarBuilder) -> Result<Self> {
        Ok(Block {
            input_norm: candle_nn::rms_norm(
                c.hidden_size,
                c.rms_norm_eps,
                vb.pp("input_layernorm"),
            )?,
            attention: Attention::load(c, vb.pp("self_attn"))?,
            post_norm: candle_nn::rms_norm(
                c.hidden_size,
                c.rms_norm_eps,
                vb.pp("post_attention_layernorm"),
            )?,
            mlp: Mlp::load(c, vb.pp("mlp"))?,
        })
    }

    /// Takes the residual stream by value so the block's input is freed once it is summed.
    fn forward(
        &self,
        x: Tensor,
        mask: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        chunk: usize,
    ) -> Result<Tensor> {
        let normed = self.input_norm.forward(&x)?;
        let h = self.attention.forward(&normed, mask, cos, sin, chunk)?;
        drop(normed);
        let x = (x + h)?;
        let normed = self.post_norm.forward(&x)?;
        let h = self.mlp.forward(&normed)?;
        drop(normed);
        Ok((x + h)?)
    }
}

/// `f(x)`, with `x` freed as soon as the result exists (a shadowing `let` would keep it alive
/// to the end of the scope, doubling the peak of every step).
fn then(x: Tensor, f: impl FnOnce(&Tensor) -> candle_core::Result<Tensor>) -> Result<Tensor> {
    Ok(f(&x)?)
}

/// The safetensors files of a model directory: the shards an index names, else
/// `model.safetensors`, else every `*.safetensors` (sorted).
fn weight_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let index = dir.join("model.safetensors.index.json");
    if index.exists() {
        let text = std::fs::read_to_string(&index).map_err(|e| EbmError::io(&index, e))?;
        let json: serde_json::Value =
            serde_json::from_str(&text).map_err(|error| EbmError::Json {
                path: index.clone(),
                error,
            })?;
        let map = json
            .get("weight_map")
            .and_then(|m| m.as_object())
            .ok_or_else(|| EbmError::ModelConfig {
                path: index.clone(),
                message: "no \"weight_map\" object".into(),
            })?;
        let mut files: Vec<PathBuf> = map
            .values()
            .filter_map(|v| v.as_str())
            .map(|f| dir.join(f))
            .collect();
        files.sort();
        files.dedup();
        return Ok(files);
    }
    let single = dir.join("model.safetensors");
    if single.exists() {
        return Ok(vec![single]);
    }
    let entries = std::fs::read_dir(dir).map_err(|e| EbmError::io(dir, e))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(EbmError::io(
            dir,
            std::io::Error::new(std::io::ErrorKind::NotFound, "no *.safetensors weights"),
        ));
    }
    Ok(files)
}

impl LlamaEncoder {
    /// Loads `config.json`, the safetensors weights (memory-mapped; single file or sharded
    /// with `model.safetensors.index.json`), `tokenizer.json` and, if present,
    /// `tokenizer_config.json` (BOS/EOS, see `tokenizer_config`) from a Hugging Face model
    /// directory. The compute dtype follows the device (`device::compute_dtype`).
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        let config = LlamaConfig::from_file(&dir.join("config.json"))?;
        let tok_path = dir.join("tokenizer.json");
        let mut tokenizer = Tokenizer::from_file(&tok_path).map_err(|e| EbmError::Tokenizer {
            path: tok_path.clone(),
            message: e.to_string(),
        })?;
        let specials = apply_tokenizer_config(dir, &mut tokenizer)?;
        let identity = encoder_identity(dir, compute_dtype(device).0)?;
        let files = weight_files(dir)?;
        let (dtype, why) = compute_dtype(device);
        tracing::info!(?dtype, "compute dtype: {why}");
        // SAFETY: the weight files are mapped read-only; like every mmap-based loader we
        // assume nobody truncates them while the server runs.
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&files, dtype, device)? };
        // LlamaForCausalLM checkpoints nest the decoder under `model.`; bare LlamaModel ones don't.
        let vb = if vb.contains_tensor("model.embed_tokens.weight") {
            vb.pp("model")
        } else {
            vb
        };
        let embed =
            candle_nn::embedding(config.vocab_size, config.hidden_size, vb.pp("embed_tokens"))?;
        let blocks = (0..config.num_hidden_layers)
            .map(|i| Block::load(&config, vb.pp(format!("layers.{i}"))))
            .collect::<Result<Vec<_>>>()?;
        let norm = candle_nn::rms_norm(config.hidden_size, config.rms_norm_eps, vb.pp("norm"))?;
        tracing::info!(
            dir = %dir.display(),
            layers = config.num_hidden_layers,
            hidden = config.hidden_size,
            shards = files.len(),
            ?dtype,
            specials = ?specials.map(|s| (s.bos.map(|b| b.0), s.eos.map(|e| e.0))),
            "loaded Llama encoder"
        );
        Ok(LlamaEncoder {
            config,
            embed,
            blocks,
            norm,
            tokenizer,
            device: device.clone(),
            dtype,
            attention_budget: DEFAULT_ATTENTION_BUDGET,
            identity,
        })
    }

    /// Bytes one attention chunk's scores may take; at least one head is always computed.
    pub fn with_attention_budget(mut self, bytes: usize) -> Self {
        self.attention_budget = bytes;
        self
    }

    pub fn attention_budget(&self) -> usize {
        self.attention_budget
    }

    /// Which encoder this is (no head): what `/health` and an embedding cache report.
    pub fn identity(&self) -> &ModelIdentity {
        &self.identity
    }

    pub fn config(&self) -> &LlamaConfig {
        &self.config
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Size of each embedding.
    pub fn hidden_size(&self) -> usize {
        self.config.hidden_size
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Token ids as transformers makes them (with BOS/EOS as configured).
    pub fn tokenize(&self, text: &str) -> Result<Vec<u32>> {
        Ok(self.tokenize_truncated(text, usize::MAX)?.ids)
    }

    /// Token ids of at most `max_tokens` (if the specials leave room for text): the leading
    /// and trailing special tokens (BOS, EOS) stay, and of the text's own tokens the *last*
    /// ones are kept, since a goal's target `⊢ …` comes last. Equal to transformers with
    /// `truncation_side="left", truncation=True, max_length=max_tokens`.
    pub fn tokenize_truncated(&self, text: &str, max_tokens: usize) -> Result<Tokens> {
        let enc = self
            .tokenizer
            .encode(text, true)
            .map_err(|e| EbmError::Encode(e.to_string()))?;
        let ids = enc.get_ids();
        if ids.len() <= max_tokens {
            return Ok(Tokens {
                ids: ids.to_vec(),
                truncated: false,
            });
        }
        let special = enc.get_special_tokens_mask();
        let prefix = special.iter().take_while(|&&m| m == 1).count();
        let suffix = special[prefix..]
            .iter()
            .rev()
            .take_while(|&&m| m == 1)
            .count();
        let room = max_tokens.saturating_sub(prefix + suffix);
        let body_end = ids.len() - suffix;
        let mut out = ids[..prefix].to_vec();
        out.extend_from_slice(&ids[body_end - room.min(body_end - prefix)..]);
        Ok(Tokens {
            ids: out,
            truncated: true,
        })
    }

    /// Embeddings `[texts.len(), hidden]` in f32.
    pub fn encode(&self, texts: &[&str]) -> Result<Tensor> {
        let ids = texts
            .iter()
            .map(|t| self.tokenize(t))
            .collect::<Result<Vec<_>>>()?;
        self.encode_ids(&ids)
    }

    /// Embeddings of pre-tokenized sequences, one forward pass over the right-padded batch.
    pub fn encode_ids(&self, ids: &[Vec<u32>]) -> Result<Tensor> {
        let b = ids.len();
        if b == 0 {
            return Ok(Tensor::zeros(
                (0, self.hidden_size()),
                DType::F32,
                &self.device,
            )?);
        }
        if let Some(i) = ids.iter().position(|s| s.is_empty()) {
            return Err(EbmError::Encode(format!("sequence {i} has no tokens")));
        }
        let t = ids.iter().map(Vec::len).max().unwrap_or(0);
        let mut flat = Vec::with_capacity(b * t);
        let mut keep = Vec::with_capacity(b * t);
        for seq in ids {
            flat.extend(
                seq.iter()
                    .copied()
                    .chain(std::iter::repeat_n(0, t - seq.len())),
            );
            keep.extend((0..t).map(|j| if j < seq.len() { 1f32 } else { 0f32 }));
        }
        let input = Tensor::from_vec(flat, (b, t), &self.device)?;
        let keep = Tensor::from_vec(keep, (b, t), &self.device)?;

        let chunk = heads_per_chunk(&self.config, b, t, self.attention_budget);
        let mask = self.attention_mask(&keep, t)?;
        let (cos, sin) = self.rotary(t)?;
        let mut x = self.embed.forward(&input)?;
        for block in &self.blocks {
            x = block.forward(x, &mask, &cos, &sin, chunk)?;
        }
        drop(mask);
        let last = then(self.norm.forward(&x)?, |n| n.to_dtype(DType::F32))?;
        drop(x);
        let keep = keep.unsqueeze(D::Minus1)?;
        let summed = then(last.broadcast_mul(&keep)?, |x| x.sum(1))?;
        drop(last);
        Ok(summed.broadcast_div(&keep.sum(1)?)?)
    }

    /// Additive f32 mask `[b, 1, t, t]`: -inf above the diagonal and on padded keys. With
    /// right padding every query row keeps key 0, so no row is fully masked.
    fn attention_mask(&self, keep: &Tensor, t: usize) -> Result<Tensor> {
        let causal: Vec<f32> = (0..t)
            .flat_map(|i| (0..t).map(move |j| if j > i { f32::NEG_INFINITY } else { 0.0 }))
            .collect();
        let causal = Tensor::from_vec(causal, (1, 1, t, t), &self.device)?;
        // keep 1 -> 0, keep 0 -> -inf (as 0 * inf would be NaN, go through where_cond).
        let (b, _) = keep.dims2()?;
        let neg = Tensor::full(f32::NEG_INFINITY, (b, t), &self.device)?;
        let zero = Tensor::zeros((b, t), DType::F32, &self.device)?;
        let padding = keep
            .ne(0f32)?
            .where_cond(&zero, &neg)?
            .reshape((b, 1, 1, t))?;
        Ok(causal.broadcast_add(&padding)?)
    }

    /// cos and sin `[t, head_dim / 2]` in the compute dtype, computed in f32 as HF does.
    fn rotary(&self, t: usize) -> Result<(Tensor, Tensor)> {
        let (inv_freq, scale) = self.config.rope_frequencies(t);
        let half = inv_freq.len();
        let inv_freq = Tensor::from_vec(inv_freq, (1, half), &self.device)?;
        let positions = Tensor::arange(0u32, t as u32, &self.device)?
            .to_dtype(DType::F32)?
            .reshape((t, 1))?;
        let freqs = positions.broadcast_mul(&inv_freq)?;
        let cos = (freqs.cos()? * scale as f64)?.to_dtype(self.dtype)?;
        let sin = (freqs.sin()? * scale as f64)?.to_dtype(self.dtype)?;
        Ok((cos, sin))
    }
}

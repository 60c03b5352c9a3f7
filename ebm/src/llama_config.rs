//! The parts of a Hugging Face Llama `config.json` the encoder needs, and the rotary
//! frequencies it implies (HF's `modeling_rope_utils`, computed in f32 like HF does).
//!
//! A foreign file: unknown keys are ignored (HF configs carry dozens), but every key we use is
//! checked, and an unsupported architecture or `rope_scaling` type is an error naming it.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::{EbmError, Result};

#[derive(Clone, Debug, PartialEq)]
pub struct LlamaConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: usize,
    pub head_dim: usize,
    pub rms_norm_eps: f64,
    pub max_position_embeddings: usize,
    pub attention_bias: bool,
    pub mlp_bias: bool,
    pub rope: Rope,
}

/// Rotary embedding parameters: base and scaling.
#[derive(Clone, Debug, PartialEq)]
pub struct Rope {
    pub theta: f64,
    pub scaling: RopeScaling,
}

#[derive(Clone, Debug, PartialEq)]
pub enum RopeScaling {
    None,
    /// Position interpolation: every frequency divided by `factor`.
    Linear {
        factor: f64,
    },
    /// Dynamic NTK: the base grows once a batch is longer than `max_position_embeddings`.
    Dynamic {
        factor: f64,
    },
    Llama3 {
        factor: f64,
        low_freq_factor: f64,
        high_freq_factor: f64,
        original_max_position_embeddings: usize,
    },
    Yarn {
        factor: f64,
        original_max_position_embeddings: usize,
        attention_factor: f64,
        beta_fast: f64,
        beta_slow: f64,
        truncate: bool,
    },
}

/// The raw keys, before validation.
#[derive(Deserialize)]
struct RawConfig {
    vocab_size: usize,
    hidden_size: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    num_key_value_heads: Option<usize>,
    head_dim: Option<usize>,
    #[serde(default = "default_eps")]
    rms_norm_eps: f64,
    #[serde(default = "default_max_pos")]
    max_position_embeddings: usize,
    original_max_position_embeddings: Option<usize>,
    #[serde(default)]
    attention_bias: bool,
    #[serde(default)]
    mlp_bias: bool,
    hidden_act: Option<String>,
    model_type: Option<String>,
    rope_theta: Option<f64>,
    rope_scaling: Option<Map<String, Value>>,
    /// transformers >= 5 writes `rope_theta` and the scaling keys here instead.
    rope_parameters: Option<Map<String, Value>>,
    partial_rotary_factor: Option<f64>,
}

fn default_eps() -> f64 {
    1e-6
}
fn default_max_pos() -> usize {
    2048
}

impl LlamaConfig {
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| EbmError::io(path, e))?;
        Self::from_json(&text, path)
    }

    /// `path` only names the file in errors.
    pub fn from_json(text: &str, path: &Path) -> Result<Self> {
        let bad = |message: String| EbmError::ModelConfig {
            path: PathBuf::from(path),
            message,
        };
        let raw: RawConfig = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
        if let Some(t) = raw.model_type.as_deref() {
            // Others (qwen2's q/k/v-only biases, mistral's sliding window, internlm2's fused
            // wqkv) differ in ways this encoder does not model.
            if t != "llama" {
                return Err(bad(format!(
                    "model_type {t:?} is not a Llama-family decoder"
                )));
            }
        }
        if let Some(act) = raw.hidden_act.as_deref() {
            if act != "silu" {
                return Err(bad(format!(
                    "hidden_act {act:?} is not supported (only silu)"
                )));
            }
        }
        if raw.partial_rotary_factor.is_some_and(|f| f != 1.0) {
            return Err(bad("partial_rotary_factor != 1 is not supported".into()));
        }
        let heads = raw.num_attention_heads;
        let kv_heads = raw.num_key_value_heads.unwrap_or(heads);
        if heads == 0 || kv_heads == 0 || !heads.is_multiple_of(kv_heads) {
            return Err(bad(format!(
                "num_attention_heads {heads} must be a positive multiple of num_key_value_heads {kv_heads}"
            )));
        }
        let head_dim = match raw.head_dim {
            Some(d) => d,
            None if raw.hidden_size.is_multiple_of(heads) => raw.hidden_size / heads,
            None => {
                return Err(bad(format!(
                    "hidden_size {} is not divisible by num_attention_heads {heads}",
                    raw.hidden_size
                )))
            }
        };
        if head_dim % 2 != 0 {
            return Err(bad(format!(
                "head_dim {head_dim} must be even for rotary embeddings"
            )));
        }
        let rope = parse_rope(&raw).map_err(bad)?;
        Ok(LlamaConfig {
            vocab_size: raw.vocab_size,
            hidden_size: raw.hidden_size,
            intermediate_size: raw.intermediate_size,
            num_hidden_layers: raw.num_hidden_layers,
            num_attention_heads: heads,
            num_key_value_heads: kv_heads,
            head_dim,
            rms_norm_eps: raw.rms_norm_eps,
            max_position_embeddings: raw.max_position_embeddings,
            attention_bias: raw.attention_bias,
            mlp_bias: raw.mlp_bias,
            rope,
        })
    }

    /// Inverse frequencies (`head_dim / 2` of them) and the cos/sin scale for a batch whose
    /// longest sequence has `seq_len` tokens (only dynamic NTK depends on it).
    pub fn rope_frequencies(&self, seq_len: usize) -> (Vec<f32>, f32) {
        let dim = self.head_dim;
        let default_freqs = |base: f64| -> Vec<f32> {
            (0..dim)
                .step_by(2)
                .map(|i| 1.0 / (base as f32).powf(i as f32 / dim as f32))
                .collect()
        };
        let theta = self.rope.theta;
        match &self.rope.scaling {
            RopeScaling::None => (default_freqs(theta), 1.0),
            RopeScaling::Linear { factor } => (
                default_freqs(theta)
                    .into_iter()
                    .map(|f| f / *factor as f32)
                    .collect(),
                1.0,
            ),
            RopeScaling::Dynamic { factor } => {
                let max = self.max_position_embeddings as f64;
                let len = (seq_len as f64).max(max);
                let base = theta
                    * ((factor * len / max) - (factor - 1.0)).powf(dim as f64 / (dim as f64 - 2.0));
                (default_freqs(base), 1.0)
            }
            RopeScaling::Llama3 {
                factor,
                low_freq_factor,
                high_freq_factor,
                original_max_position_embeddings,
            } => {
                let (factor, low, high) = (
                    *factor as f32,
                    *low_freq_factor as f32,
                    *high_freq_factor as f32,
                );
                let old = *original_max_position_embeddings as f32;
                let (low_wavelen, high_wavelen) = (old / low, old / high);
                let freqs = default_freqs(theta)
                    .into_iter()
                    .map(|f| {
                        let wavelen = 2.0 * std::f32::consts::PI / f;
                        let scaled = if wavelen > low_wavelen { f / factor } else { f };
                        let medium = wavelen >= high_wavelen && wavelen <= low_wavelen;
                        if medium {
                            let smooth = (old / wavelen - low) / (high - low);
                            (1.0 - smooth) * scaled / factor + smooth * scaled
                        } else {
                            scaled
                        }
                    })
                    .collect();
                (freqs, 1.0)
            }
            RopeScaling::Yarn {
                factor,
                original_max_position_embeddings,
                attention_factor,
                beta_fast,
                beta_slow,
                truncate,
            } => {
                let orig = *original_max_position_embeddings as f64;
                let correction_dim = |rotations: f64| {
                    (dim as f64 * (orig / (rotations * 2.0 * std::f64::consts::PI)).ln())
                        / (2.0 * theta.ln())
                };
                let (mut low, mut high) = (correction_dim(*beta_fast), correction_dim(*beta_slow));
                if *truncate {
                    low = low.floor();
                    high = high.ceil();
                }
                let low = low.max(0.0) as f32;
                let mut high = high.min(dim as f64 - 1.0) as f32;
                if low == high {
                    high += 0.001;
                }
                let freqs = default_freqs(theta)
                    .into_iter()
                    .enumerate()
                    .map(|(i, extrapolation)| {
                        let interpolation = extrapolation / *factor as f32;
                        let ramp = ((i as f32 - low) / (high - low)).clamp(0.0, 1.0);
                        let extrapolation_factor = 1.0 - ramp;
                        interpolation * (1.0 - extrapolation_factor)
                            + extrapolation * extrapolation_factor
                    })
                    .collect();
                (freqs, *attention_factor as f32)
            }
        }
    }
}

fn parse_rope(raw: &RawConfig) -> std::result::Result<Rope, String> {
    // transformers >= 5: `rope_parameters` holds theta and scaling; older: top-level keys.
    let params = raw.rope_parameters.as_ref().or(raw.rope_scaling.as_ref());
    let theta = params
        .and_then(|p| p.get("rope_theta"))
        .and_then(Value::as_f64)
        .or(raw.rope_theta)
        .unwrap_or(10000.0);
    let Some(p) = params else {
        return Ok(Rope {
            theta,
            scaling: RopeScaling::None,
        });
    };
    let kind = p
        .get("rope_type")
        .or_else(|| p.get("type"))
        .and_then(Value::as_str)
        .unwrap_or("default");
    let num = |key: &str| p.get(key).and_then(Value::as_f64);
    let need = |key: &str| {
        num(key).ok_or_else(|| format!("rope_scaling type {kind:?} needs a numeric {key:?}"))
    };
    // HF gives a top-level `original_max_position_embeddings` priority over the dict's.
    let original_max = raw
        .original_max_position_embeddings
        .or_else(|| num("original_max_position_embeddings").map(|v| v as usize))
        .unwrap_or(raw.max_position_embeddings);
    let scaling = match kind {
        "default" => RopeScaling::None,
        "linear" => RopeScaling::Linear {
            factor: need("factor")?,
        },
        "dynamic" => RopeScaling::Dynamic {
            factor: need("factor")?,
        },
        "llama3" => RopeScaling::Llama3 {
            factor: need("factor")?,
            low_freq_factor: need("low_freq_factor")?,
            high_freq_factor: need("high_freq_factor")?,
            original_max_position_embeddings: original_max,
        },
        "yarn" => {
            // transformers 4.57 and 5.24 both use the explicit `factor` even when
            // max_position_embeddings / original_max_position_embeddings says otherwise
            // (5.x warns, "Using the explicit factor ... in YaRN"), and both require it
            // (`_compute_yarn_parameters` reads rope_scaling["factor"]; 5.x validation lists
            // it in required_keys). Some 4.5x releases used the ratio instead.
            let factor = need("factor")?;
            let implicit = raw.max_position_embeddings as f64 / original_max as f64;
            if implicit != factor && implicit != 1.0 {
                tracing::warn!(
                    factor,
                    implicit,
                    "YaRN factor differs from max_position_embeddings / \
                     original_max_position_embeddings; using the explicit factor, as transformers does"
                );
            }
            let mscale = |scale: f64, m: f64| {
                if scale <= 1.0 {
                    1.0
                } else {
                    0.1 * m * scale.ln() + 1.0
                }
            };
            let attention_factor = match (num("attention_factor"), num("mscale"), num("mscale_all_dim")) {
                (Some(a), _, _) => a,
                (None, Some(m), Some(all)) if m != 0.0 && all != 0.0 => {
                    mscale(factor, m) / mscale(factor, all)
                }
                _ => mscale(factor, 1.0),
            };
            RopeScaling::Yarn {
                factor,
                original_max_position_embeddings: original_max,
                attention_factor,
                beta_fast: num("beta_fast").filter(|b| *b != 0.0).unwrap_or(32.0),
                beta_slow: num("beta_slow").filter(|b| *b != 0.0).unwrap_or(1.0),
                truncate: p.get("truncate").and_then(Value::as_bool).unwrap_or(true),
            }
        }
        other => {
            return Err(format!(
                "rope_scaling type {other:?} is not supported (supported: default, linear, dynamic, llama3, yarn)"
            ))
        }
    };
    Ok(Rope { theta, scaling })
}

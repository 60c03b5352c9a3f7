//! The energy head: an MLP from a pooled embedding to one energy (lower = more provable).
//!
//! Files: weights in `NAME.safetensors`, config in `NAME.json` beside it (same stem), e.g.
//! `head.safetensors` + `head.json`. Tensor names follow a PyTorch `nn.ModuleList` of
//! `nn.Linear` called `layers`: `layers.0.weight` `[out, in]`, `layers.0.bias` `[out]`, ...,
//! so `torch.nn.ModuleList([nn.Linear(a, b) for a, b in zip(w, w[1:])])` loads them with
//! `safetensors.torch.load_file` + `load_state_dict` (prefix `layers.`). SiLU follows every
//! layer but the last; dropout follows each SiLU in training only.
//!
//! With `spectral_norm`, each layer's effective weight is `W / sigma(W)`, sigma the largest
//! singular value estimated by power iteration as `torch.nn.utils.spectral_norm` does
//! (persistent `u`, `power_iterations` updates per training forward, none in eval). Only `W`
//! is saved; a loaded head re-estimates `u` to convergence, so PyTorch users divide by the
//! exact top singular value.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use candle_core::{DType, Device, Tensor, D};
use candle_nn::{Dropout, Linear, VarBuilder, VarMap};
use serde::{Deserialize, Serialize};

use crate::error::{EbmError, Result};

/// Power iterations run when a head is built, so eval starts from a converged `u`.
const INIT_POWER_ITERATIONS: usize = 30;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeadConfig {
    /// Layer widths from the embedding size to the single energy, e.g. `[4096, 2048, 1024, 512, 1]`.
    #[serde(default = "default_widths")]
    pub widths: Vec<usize>,
    /// Dropout probability after each hidden activation (training only).
    #[serde(default = "default_dropout")]
    pub dropout: f32,
    #[serde(default)]
    pub spectral_norm: bool,
    /// Power-iteration updates of `u` per training forward pass (PyTorch's default is 1).
    #[serde(default = "default_power_iterations")]
    pub power_iterations: usize,
}

fn default_widths() -> Vec<usize> {
    vec![4096, 2048, 1024, 512, 1]
}
fn default_dropout() -> f32 {
    0.1
}
fn default_power_iterations() -> usize {
    1
}

impl Default for HeadConfig {
    fn default() -> Self {
        HeadConfig {
            widths: default_widths(),
            dropout: default_dropout(),
            spectral_norm: false,
            power_iterations: default_power_iterations(),
        }
    }
}

impl HeadConfig {
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(EbmError::HeadConfig(m));
        if self.widths.len() < 2 {
            return bad(format!(
                "widths {:?}: need at least [input, 1]",
                self.widths
            ));
        }
        if self.widths.contains(&0) {
            return bad(format!("widths {:?}: every width must be > 0", self.widths));
        }
        if self.widths.last() != Some(&1) {
            return bad(format!(
                "widths {:?}: the last width must be 1",
                self.widths
            ));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return bad(format!("dropout {} is not in [0, 1)", self.dropout));
        }
        if self.spectral_norm && self.power_iterations == 0 {
            return bad("power_iterations must be >= 1 with spectral_norm".into());
        }
        Ok(())
    }

    /// The embedding size the head expects.
    pub fn input_dim(&self) -> usize {
        self.widths[0]
    }
}

/// The JSON config that sits beside a head's safetensors file.
pub fn config_path(weights: &Path) -> PathBuf {
    weights.with_extension("json")
}

struct Layer {
    linear: Linear,
    /// Left singular vector estimate, present with spectral norm.
    u: Option<Mutex<Tensor>>,
}

pub struct EnergyHead {
    config: HeadConfig,
    layers: Vec<Layer>,
    dropout: Dropout,
    /// sha256 of the weights file it was loaded from (None when built in memory).
    weights_sha256: Option<String>,
}

impl std::fmt::Debug for EnergyHead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnergyHead")
            .field("config", &self.config)
            .finish()
    }
}

impl EnergyHead {
    /// Builds (or, from a loaded VarBuilder, reads) the layers under `layers.N.*` of `vb`.
    /// With a VarBuilder over a `VarMap`, new weights get PyTorch's `nn.Linear` init.
    pub fn new(cfg: &HeadConfig, vb: VarBuilder) -> Result<Self> {
        cfg.validate()?;
        let mut layers = Vec::with_capacity(cfg.widths.len() - 1);
        for (i, pair) in cfg.widths.windows(2).enumerate() {
            let linear = candle_nn::linear(pair[0], pair[1], vb.pp(format!("layers.{i}")))?;
            let u = if cfg.spectral_norm {
                let w = linear.weight().detach();
                let mut u = normalize(&Tensor::ones(pair[1], DType::F32, w.device())?)?;
                for _ in 0..INIT_POWER_ITERATIONS {
                    u = power_step(&w, &u)?;
                }
                Some(Mutex::new(u))
            } else {
                None
            };
            layers.push(Layer { linear, u });
        }
        Ok(EnergyHead {
            weights_sha256: None,
            config: cfg.clone(),
            layers,
            dropout: Dropout::new(cfg.dropout),
        })
    }

    /// Reads `path` (safetensors) and its config (`path` with extension `.json`), in f32.
    pub fn load(path: &Path, device: &Device) -> Result<Self> {
        let cfg_path = config_path(path);
        let text = std::fs::read_to_string(&cfg_path).map_err(|e| EbmError::io(&cfg_path, e))?;
        let cfg: HeadConfig = serde_json::from_str(&text).map_err(|error| EbmError::Json {
            path: cfg_path.clone(),
            error,
        })?;
        let tensors = candle_core::safetensors::load(path, device)?;
        let vb = VarBuilder::from_tensors(tensors, DType::F32, device);
        let mut head = Self::new(&cfg, vb)?;
        head.weights_sha256 = Some(crate::identity::file_sha256(&[path])?);
        Ok(head)
    }

    /// sha256 of the weights file, for the served model's identity.
    pub fn weights_sha256(&self) -> Option<&str> {
        self.weights_sha256.as_deref()
    }

    pub fn config(&self) -> &HeadConfig {
        &self.config
    }

    /// Energies of `x` (`[batch, input_dim]`, any float dtype), shape `[batch]`, f32.
    /// `train` turns on dropout and the power-iteration update.
    pub fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let (_, dim) = x.dims2()?;
        if dim != self.config.input_dim() {
            return Err(EbmError::HeadConfig(format!(
                "input has {dim} features, the head expects {}",
                self.config.input_dim()
            )));
        }
        let mut h = x.to_dtype(DType::F32)?;
        let last = self.layers.len() - 1;
        for (i, layer) in self.layers.iter().enumerate() {
            let w = self.effective_weight(layer, train)?;
            h = h.matmul(&w.t()?)?;
            if let Some(b) = layer.linear.bias() {
                h = h.broadcast_add(b)?;
            }
            if i < last {
                h = candle_nn::ops::silu(&h)?;
                h = self.dropout.forward(&h, train)?;
            }
        }
        Ok(h.squeeze(D::Minus1)?)
    }

    fn effective_weight(&self, layer: &Layer, train: bool) -> Result<Tensor> {
        let w = layer.linear.weight();
        let Some(u_cell) = &layer.u else {
            return Ok(w.clone());
        };
        let mut u_guard = u_cell.lock().unwrap_or_else(|p| p.into_inner());
        if train {
            let wd = w.detach();
            for _ in 0..self.config.power_iterations {
                *u_guard = power_step(&wd, &u_guard)?;
            }
        }
        let u = u_guard.clone();
        drop(u_guard);
        // v from the current u; both held constant so gradients flow through W only.
        let v = normalize(&w.detach().t()?.matmul(&u.unsqueeze(1)?)?.squeeze(1)?)?;
        let sigma = u
            .unsqueeze(0)?
            .matmul(&w.matmul(&v.unsqueeze(1)?)?)?
            .reshape(())?;
        Ok(w.broadcast_div(&sigma)?)
    }
}

/// One power-iteration step on `w` (`[out, in]`): `v = W^T u / |.|`, `u = W v / |.|`.
fn power_step(w: &Tensor, u: &Tensor) -> Result<Tensor> {
    let v = normalize(&w.t()?.matmul(&u.unsqueeze(1)?)?.squeeze(1)?)?;
    normalize(&w.matmul(&v.unsqueeze(1)?)?.squeeze(1)?)
}

fn normalize(x: &Tensor) -> Result<Tensor> {
    let norm = x.sqr()?.sum_all()?.sqrt()?.affine(1.0, 1e-12)?;
    Ok(x.broadcast_div(&norm)?)
}

/// Writes every variable of `varmap` to `path` (safetensors) and `cfg` beside it as JSON.
/// Build the head on the VarMap's root VarBuilder so the names are `layers.N.*`.
pub fn save_head(varmap: &VarMap, cfg: &HeadConfig, path: &Path) -> Result<()> {
    cfg.validate()?;
    varmap.save(path)?;
    let cfg_path = config_path(path);
    let json = serde_json::to_string_pretty(cfg).map_err(|error| EbmError::Json {
        path: cfg_path.clone(),
        error,
    })?;
    std::fs::write(&cfg_path, json + "\n").map_err(|e| EbmError::io(&cfg_path, e))
}

//! The head `ebm serve` scores with, and what `/health` says about it: the weights, the file
//! they came from, and the energy scale their training run recorded. One value, so `POST
//! /head` replaces all of it at once and a request never sees the weights of one head with
//! the path or scale of another.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use formats::identity::{EnergyScale, HeadHealth};

use crate::energy_head::EnergyHead;
use crate::error::{EbmError, Result};
use crate::llama_encoder::LlamaEncoder;
use crate::train::{check_head_encoder, recorded_energy_scale};

pub struct ServedHead {
    head: Arc<EnergyHead>,
    /// The weights file, absolute (None for a head built in memory).
    path: Option<PathBuf>,
    scale: Option<EnergyScale>,
}

impl ServedHead {
    /// A head built in memory (tests, benchmarks): no file, no energy scale.
    pub fn in_memory(head: Arc<EnergyHead>) -> Self {
        ServedHead {
            head,
            path: None,
            scale: None,
        }
    }

    /// Loads the head at `path` (its `.json` beside it) to score `encoder`'s embeddings.
    /// Refused when its `train.json` records another model than the encoder
    /// ([`EbmError::OtherModel`]) or its input width is not the encoder's
    /// ([`EbmError::HeadWidth`]); another dtype only warns. The energy scale is the one
    /// `train.json` recorded for these very weights, if any.
    pub fn load(path: &Path, encoder: &LlamaEncoder) -> Result<Self> {
        if let Some(warning) = check_head_encoder(path, encoder.identity())? {
            tracing::warn!("{}: {warning}", path.display());
        }
        let head = EnergyHead::load(path, encoder.device())?;
        let served = ServedHead {
            scale: recorded_energy_scale(
                path,
                head.weights_sha256().expect("a loaded head has its hash"),
            )?,
            head: Arc::new(head),
            path: Some(std::path::absolute(path).map_err(|e| EbmError::io(path, e))?),
        };
        served.check_fits(encoder)?;
        if served.scale.is_none() {
            tracing::warn!(
                "{}: no energy scale recorded for these weights (a head trained before \
                 `ebm train` recorded one, a checkpoint other than the best, or energies \
                 that collapsed): searches \
                 rank by its raw energies",
                path.display()
            );
        }
        Ok(served)
    }

    /// Refuses a head whose input width is not `encoder`'s hidden size.
    pub fn check_fits(&self, encoder: &LlamaEncoder) -> Result<()> {
        let width = self.head.config().input_dim();
        if width != encoder.hidden_size() {
            return Err(EbmError::HeadWidth {
                head: width,
                encoder: encoder.hidden_size(),
            });
        }
        Ok(())
    }

    pub fn head(&self) -> &EnergyHead {
        &self.head
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    pub fn energy_scale(&self) -> Option<EnergyScale> {
        self.scale
    }

    /// Its fields of the `/health` body.
    pub fn health(&self) -> HeadHealth {
        HeadHealth {
            head_path: self.path.as_ref().map(|p| p.display().to_string()),
            energy_scale: self.scale,
        }
    }
}

//! `stepwise ebm embed`: every distinct proof state of a set of trajectories through the
//! encoder once, into the [`EmbeddingCache`] file, so training and evaluation never touch the
//! 7B encoder again.
//!
//! The empty state (a completed proof: no goals) is never sent: the search never scores it,
//! the server refuses it, and training and evaluation leave terminal nodes out.
//!
//! Batches go out `concurrency` at a time; each finished batch is persisted as a cache part
//! before it counts as done, so a killed run (or a failed request) loses at most the batches
//! in flight and `--resume` sends only what is missing.

use std::collections::HashSet;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::task::JoinSet;

use crate::embedding_cache::{CacheError, EmbeddingCache, PartWriter};
use crate::error::EbmError;
use crate::llama_encoder::LlamaEncoder;
use crate::trajectories::Trajectories;
use formats::identity::ModelIdentity;

/// Anything that turns texts into embeddings, one per text, in order.
pub trait Encoder: Send + Sync + 'static {
    type Error: std::error::Error + Send + Sync + 'static;
    fn encode(
        &self,
        texts: Vec<String>,
    ) -> impl Future<Output = Result<Vec<Vec<f32>>, Self::Error>> + Send;

    /// The model the embeddings come from, recorded in the cache; None when unknown.
    fn identity(&self) -> impl Future<Output = Option<ModelIdentity>> + Send {
        async { None }
    }
}

/// `--model DIR`: the encoder in this process, each batch on a blocking thread.
pub struct LocalEncoder(pub Arc<LlamaEncoder>);

impl Encoder for LocalEncoder {
    type Error = EbmError;
    async fn encode(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EbmError> {
        let encoder = Arc::clone(&self.0);
        tokio::task::spawn_blocking(move || {
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            Ok(encoder.encode(&refs)?.to_vec2::<f32>()?)
        })
        .await
        .expect("the encoder does not panic")
    }

    async fn identity(&self) -> Option<ModelIdentity> {
        Some(self.0.identity().clone())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error("encoder failed: {0}")]
    Encoder(Box<dyn std::error::Error + Send + Sync>),
    #[error("encoder returned {got} embeddings for {sent} texts")]
    Count { sent: usize, got: usize },
    #[error("{0} already exists: pass --resume to add to it, or remove it")]
    Exists(PathBuf),
    #[error("nothing to embed and no cache to resume")]
    Empty,
}

/// One finished batch: the texts sent and the encoder's answer.
type Encoded<E> = (Vec<String>, Result<Vec<Vec<f32>>, <E as Encoder>::Error>);

#[derive(Debug, Clone, Copy)]
pub struct EmbedOptions {
    pub batch: usize,
    pub concurrency: usize,
    pub resume: bool,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EmbedReport {
    /// Distinct non-empty states.
    pub distinct_states: usize,
    /// Whether the empty (terminal) state occurred and was left out.
    pub skipped_empty_state: bool,
    pub already_cached: usize,
    pub embedded: usize,
    pub dim: usize,
    pub cache_rows: usize,
}

/// The states of `traj` an embedding cache needs: every non-terminal node's. Terminal nodes
/// are never scored, so never embedded (their state is "").
pub fn embeddable_states(traj: Trajectories) -> impl Iterator<Item = String> {
    traj.nodes
        .into_iter()
        .filter(|n| !n.status.is_terminal())
        .map(|n| n.state)
}

/// Refuses to start over a cache (finished or partial) unless resuming: call it before
/// loading a large encoder, so a wrong `--out` fails in a second, not after minutes.
pub fn ensure_writable(out: &Path, resume: bool) -> Result<(), EmbedError> {
    let mut parts_name = out.file_name().unwrap_or_default().to_os_string();
    parts_name.push(".parts");
    if !resume && (out.exists() || out.with_file_name(parts_name).exists()) {
        return Err(EmbedError::Exists(out.to_path_buf()));
    }
    Ok(())
}

/// Embeds the distinct `states` missing from the cache at `out` and writes the merged cache.
pub async fn embed_states<E: Encoder>(
    encoder: Arc<E>,
    states: impl IntoIterator<Item = String>,
    out: &Path,
    opts: EmbedOptions,
) -> Result<EmbedReport, EmbedError> {
    ensure_writable(out, opts.resume)?;
    let mut cache = if opts.resume {
        EmbeddingCache::load_resumable(out)?
    } else {
        None
    };
    // A resumed cache from another model is refused before anything is sent.
    // The encoder's identity; a head the server may have loaded plays no part in embeddings.
    let identity = encoder.identity().await.map(|mut i| {
        i.head_sha256 = None;
        i
    });
    if identity.is_none() {
        tracing::warn!("the encoder does not say which model it is; the cache will not record it");
    }
    if let Some(cache) = cache.as_mut() {
        cache.set_identity(identity.clone())?;
    }
    let mut seen = HashSet::new();
    let distinct: Vec<String> = states
        .into_iter()
        .filter(|s| seen.insert(s.clone()))
        .collect();
    let skipped_empty_state = seen.contains("");
    let distinct: Vec<String> = distinct.into_iter().filter(|s| !s.is_empty()).collect();
    let todo: Vec<String> = distinct
        .iter()
        .filter(|s| !cache.as_ref().is_some_and(|c| c.contains(s)))
        .cloned()
        .collect();
    let already_cached = distinct.len() - todo.len();
    tracing::info!(
        distinct = distinct.len(),
        already_cached,
        todo = todo.len(),
        "embedding states"
    );

    let bar = indicatif::ProgressBar::new(todo.len() as u64).with_style(
        indicatif::ProgressStyle::with_template(
            "embed {bar:30} {pos}/{len} states  {per_sec}  eta {eta}",
        )
        .expect("valid template"),
    );
    let mut batches = todo.chunks(opts.batch.max(1)).map(<[String]>::to_vec);
    let mut in_flight: JoinSet<Encoded<E>> = JoinSet::new();
    let mut parts: Option<PartWriter> = None;
    let mut embedded = 0;
    loop {
        while in_flight.len() < opts.concurrency.max(1) {
            let Some(batch) = batches.next() else { break };
            let encoder = encoder.clone();
            in_flight.spawn(async move {
                let result = encoder.encode(batch.clone()).await;
                (batch, result)
            });
        }
        let Some(joined) = in_flight.join_next().await else {
            break;
        };
        let (batch, result) = joined.expect("embedding tasks do not panic");
        let embeddings = result.map_err(|e| EmbedError::Encoder(Box::new(e)))?;
        if embeddings.len() != batch.len() {
            return Err(EmbedError::Count {
                sent: batch.len(),
                got: embeddings.len(),
            });
        }
        let cache = match cache.as_mut() {
            Some(cache) => cache,
            None => {
                let mut fresh = EmbeddingCache::new(embeddings[0].len());
                fresh.set_identity(identity.clone())?;
                cache.insert(fresh)
            }
        };
        let parts = match parts.as_mut() {
            Some(parts) => parts,
            None => parts.insert(PartWriter::new(out, cache.dim(), identity.clone())?),
        };
        parts.write(&batch, &embeddings)?;
        for (state, embedding) in batch.into_iter().zip(&embeddings) {
            cache.insert(state, embedding)?;
        }
        embedded += embeddings.len();
        bar.inc(embeddings.len() as u64);
    }
    bar.finish_and_clear();
    let cache = cache.ok_or(EmbedError::Empty)?;
    cache.save(out)?;
    Ok(EmbedReport {
        distinct_states: distinct.len(),
        skipped_empty_state,
        already_cached,
        embedded,
        dim: cache.dim(),
        cache_rows: cache.len(),
    })
}

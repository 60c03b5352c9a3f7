//! The embedding cache: every distinct proof-state text once, with its encoder embedding, so
//! training and evaluation run on the energy head alone.
//!
//! Format: one Parquet file with two columns, `state` (utf8) and `embedding`
//! (`fixed_size_list<float32>[dim]`), one row per distinct state, written in row groups of
//! [`ROW_GROUP_ROWS`]. Why Parquet and not safetensors + index: the key is text, which
//! safetensors cannot hold, so it would need a second index file kept in step with the tensor;
//! Parquet keeps key and value in the same row, carries the dimension in its schema (even with
//! zero rows), compresses the repetitive state text, and is what the trajectory files already
//! use, so pandas/polars/PyTorch read both the same way.
//!
//! The model that made the embeddings (`formats::identity::ModelIdentity`, as `ebm serve`
//! reports it on `/health`) is kept as JSON in the Arrow schema metadata under
//! [`IDENTITY_KEY`], so a cache from another encoder is recognised, not silently mixed.
//!
//! Resumability: a Parquet footer is written only when a file is closed, so a killed writer
//! would lose everything. While embedding, each finished batch is therefore written as its own
//! complete Parquet part in `FILE.parts/` (temp file + rename, so a part is either whole or
//! absent). [`EmbeddingCache::load_resumable`] reads `FILE` plus any parts; when embedding
//! finishes, everything is merged into `FILE` (again temp + rename) and the parts are removed.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{Array, ArrayRef, FixedSizeListArray, Float32Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use formats::identity::ModelIdentity;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

/// Schema metadata key of the model identity.
pub const IDENTITY_KEY: &str = "stepwise.model_identity";

/// Rows per Parquet row group (and per part file at most).
pub const ROW_GROUP_ROWS: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("embedding cache {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("embedding cache {path}: {source}")]
    Parquet {
        path: PathBuf,
        source: parquet::errors::ParquetError,
    },
    #[error("embedding cache {path}: {message}")]
    Format { path: PathBuf, message: String },
    #[error("embedding of width {got} does not fit a cache of width {expected}")]
    Width { expected: usize, got: usize },
    #[error("embeddings of two different models: {a} vs {b}")]
    Identity { a: String, b: String },
}

/// State text -> embedding, all of one width, in insertion order.
#[derive(Debug, Clone)]
pub struct EmbeddingCache {
    dim: usize,
    /// The model the embeddings came from; None for a cache written before it was recorded.
    identity: Option<ModelIdentity>,
    index: HashMap<String, usize>,
    states: Vec<String>,
    data: Vec<f32>,
}

impl EmbeddingCache {
    pub fn new(dim: usize) -> Self {
        Self {
            dim,
            identity: None,
            index: HashMap::new(),
            states: Vec::new(),
            data: Vec::new(),
        }
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn identity(&self) -> Option<&ModelIdentity> {
        self.identity.as_ref()
    }

    /// Records the model; a cache that already names another one refuses.
    pub fn set_identity(&mut self, identity: Option<ModelIdentity>) -> Result<(), CacheError> {
        match (&self.identity, identity) {
            (Some(a), Some(b)) if *a != b => Err(identity_error(a, &b)),
            (_, Some(b)) => {
                self.identity = Some(b);
                Ok(())
            }
            (_, None) => Ok(()),
        }
    }

    pub fn len(&self) -> usize {
        self.states.len()
    }

    pub fn is_empty(&self) -> bool {
        self.states.is_empty()
    }

    pub fn contains(&self, state: &str) -> bool {
        self.index.contains_key(state)
    }

    pub fn get(&self, state: &str) -> Option<&[f32]> {
        let row = *self.index.get(state)?;
        Some(&self.data[row * self.dim..(row + 1) * self.dim])
    }

    /// Adds a state; a state already present keeps its first embedding.
    pub fn insert(&mut self, state: String, embedding: &[f32]) -> Result<(), CacheError> {
        if embedding.len() != self.dim {
            return Err(CacheError::Width {
                expected: self.dim,
                got: embedding.len(),
            });
        }
        if self.index.contains_key(&state) {
            return Ok(());
        }
        self.index.insert(state.clone(), self.states.len());
        self.states.push(state);
        self.data.extend_from_slice(embedding);
        Ok(())
    }

    fn merge(&mut self, other: EmbeddingCache) -> Result<(), CacheError> {
        self.set_identity(other.identity.clone())?;
        for (i, state) in other.states.into_iter().enumerate() {
            self.insert(state, &other.data[i * other.dim..(i + 1) * other.dim])?;
        }
        Ok(())
    }

    /// Reads a finished cache file.
    pub fn load(path: &Path) -> Result<Self, CacheError> {
        read_parquet(path)
    }

    /// Reads `path` if it exists plus every finished part in `path.parts/`; `Ok(None)` when
    /// neither exists yet.
    pub fn load_resumable(path: &Path) -> Result<Option<Self>, CacheError> {
        let mut cache = if path.exists() {
            Some(read_parquet(path)?)
        } else {
            None
        };
        for part in part_files(path)? {
            let loaded = read_parquet(&part)?;
            match cache.as_mut() {
                Some(cache) => cache.merge(loaded)?,
                None => cache = Some(loaded),
            }
        }
        Ok(cache)
    }

    /// Writes the whole cache to `path` atomically and removes `path.parts/`.
    pub fn save(&self, path: &Path) -> Result<(), CacheError> {
        write_atomic(
            path,
            self.dim,
            self.identity.as_ref(),
            &self.states,
            &self.data,
        )?;
        let parts = parts_dir(path);
        if parts.exists() {
            std::fs::remove_dir_all(&parts).map_err(|source| CacheError::Io {
                path: parts,
                source,
            })?;
        }
        Ok(())
    }
}

/// Writes finished batches as numbered part files next to the cache (see the module doc).
#[derive(Debug)]
pub struct PartWriter {
    dir: PathBuf,
    dim: usize,
    identity: Option<ModelIdentity>,
    next: usize,
}

impl PartWriter {
    pub fn new(
        cache_path: &Path,
        dim: usize,
        identity: Option<ModelIdentity>,
    ) -> Result<Self, CacheError> {
        let dir = parts_dir(cache_path);
        std::fs::create_dir_all(&dir).map_err(|source| CacheError::Io {
            path: dir.clone(),
            source,
        })?;
        let next = part_files(cache_path)?.len();
        Ok(Self {
            dir,
            dim,
            identity,
            next,
        })
    }

    /// Persists one batch; once this returns, the batch survives a crash.
    pub fn write(&mut self, states: &[String], embeddings: &[Vec<f32>]) -> Result<(), CacheError> {
        let mut data = Vec::with_capacity(states.len() * self.dim);
        for embedding in embeddings {
            if embedding.len() != self.dim {
                return Err(CacheError::Width {
                    expected: self.dim,
                    got: embedding.len(),
                });
            }
            data.extend_from_slice(embedding);
        }
        // Skip numbers taken by parts another run left behind.
        let mut path = self.dir.join(format!("part-{:06}.parquet", self.next));
        while path.exists() {
            self.next += 1;
            path = self.dir.join(format!("part-{:06}.parquet", self.next));
        }
        write_atomic(&path, self.dim, self.identity.as_ref(), states, &data)?;
        self.next += 1;
        Ok(())
    }
}

fn parts_dir(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".parts");
    path.with_file_name(name)
}

fn part_files(path: &Path) -> Result<Vec<PathBuf>, CacheError> {
    let dir = parts_dir(path);
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let entries = std::fs::read_dir(&dir).map_err(|source| CacheError::Io {
        path: dir.clone(),
        source,
    })?;
    let mut parts: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    parts.sort();
    Ok(parts)
}

fn identity_error(a: &ModelIdentity, b: &ModelIdentity) -> CacheError {
    let show = |i: &ModelIdentity| serde_json::to_string(i).unwrap_or_default();
    CacheError::Identity {
        a: show(a),
        b: show(b),
    }
}

fn schema(dim: usize, identity: Option<&ModelIdentity>) -> Arc<Schema> {
    let metadata = identity
        .map(|i| {
            let json = serde_json::to_string(i).expect("identity serialises");
            std::collections::HashMap::from([(IDENTITY_KEY.to_string(), json)])
        })
        .unwrap_or_default();
    Arc::new(Schema::new_with_metadata(
        vec![
            Field::new("state", DataType::Utf8, false),
            Field::new(
                "embedding",
                DataType::FixedSizeList(
                    Arc::new(Field::new("item", DataType::Float32, false)),
                    dim as i32,
                ),
                false,
            ),
        ],
        metadata,
    ))
}

fn write_atomic(
    path: &Path,
    dim: usize,
    identity: Option<&ModelIdentity>,
    states: &[String],
    data: &[f32],
) -> Result<(), CacheError> {
    let parquet_err = |source| CacheError::Parquet {
        path: path.to_path_buf(),
        source,
    };
    let io_err = |source| CacheError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    let schema = schema(dim, identity);
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .build();
    let file = File::create(&tmp).map_err(io_err)?;
    let mut writer =
        ArrowWriter::try_new(file, schema.clone(), Some(props)).map_err(parquet_err)?;
    for start in (0..states.len()).step_by(ROW_GROUP_ROWS) {
        let end = (start + ROW_GROUP_ROWS).min(states.len());
        let batch = record_batch(
            &schema,
            dim,
            &states[start..end],
            &data[start * dim..end * dim],
        )
        .map_err(|e| CacheError::Format {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        writer.write(&batch).map_err(parquet_err)?;
    }
    writer.close().map_err(parquet_err)?;
    std::fs::rename(&tmp, path).map_err(io_err)
}

fn record_batch(
    schema: &Arc<Schema>,
    dim: usize,
    states: &[String],
    data: &[f32],
) -> Result<RecordBatch, arrow_schema::ArrowError> {
    let item = Arc::new(Field::new("item", DataType::Float32, false));
    let values: ArrayRef = Arc::new(Float32Array::from(data.to_vec()));
    let embeddings = FixedSizeListArray::try_new(item, dim as i32, values, None)?;
    let states: ArrayRef = Arc::new(StringArray::from_iter_values(states));
    RecordBatch::try_new(schema.clone(), vec![states, Arc::new(embeddings)])
}

fn read_parquet(path: &Path) -> Result<EmbeddingCache, CacheError> {
    let format = |message: String| CacheError::Format {
        path: path.to_path_buf(),
        message,
    };
    let parquet_err = |source| CacheError::Parquet {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(|source| CacheError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(parquet_err)?;
    let dim = match builder
        .schema()
        .field_with_name("embedding")
        .map(|f| f.data_type())
    {
        Ok(DataType::FixedSizeList(_, size)) => *size as usize,
        other => {
            return Err(format(format!(
                "no fixed_size_list `embedding` column ({other:?})"
            )))
        }
    };
    let mut cache = EmbeddingCache::new(dim);
    if let Some(json) = builder.schema().metadata().get(IDENTITY_KEY) {
        let identity: ModelIdentity = serde_json::from_str(json)
            .map_err(|e| format(format!("{IDENTITY_KEY} metadata: {e}")))?;
        cache.identity = Some(identity);
    }
    for batch in builder.build().map_err(parquet_err)? {
        let batch = batch.map_err(|e| format(e.to_string()))?;
        let states = batch
            .column_by_name("state")
            .and_then(|c| c.as_any().downcast_ref::<StringArray>())
            .ok_or_else(|| format("no utf8 `state` column".into()))?;
        let embeddings = batch
            .column_by_name("embedding")
            .and_then(|c| c.as_any().downcast_ref::<FixedSizeListArray>())
            .ok_or_else(|| format("bad `embedding` column".into()))?;
        let values = embeddings
            .values()
            .as_any()
            .downcast_ref::<Float32Array>()
            .ok_or_else(|| format("`embedding` items are not float32".into()))?;
        if embeddings.null_count() > 0 || states.null_count() > 0 {
            return Err(format("null state or embedding".into()));
        }
        let offset = embeddings.offset() * dim;
        for row in 0..batch.num_rows() {
            let start = offset + row * dim;
            cache.insert(
                states.value(row).to_string(),
                &values.values()[start..start + dim],
            )?;
        }
    }
    Ok(cache)
}

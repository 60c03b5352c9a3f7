//! Search trajectories as Parquet: one row per node in `DIR/trajectories/nodes-XXXXX.parquet`
//! and one row per failed tactic attempt in `DIR/failed_attempts/failed-XXXXX.parquet`.
//! The two tables live in sibling folders so that `pandas.read_parquet("DIR/trajectories")`
//! reads exactly the node table (a dataset folder must hold one schema).
//!
//! The sweep buffers finished theorems and writes one new pair of files per batch, so a file
//! is never rewritten; each file is written under a temporary name and renamed into place, so
//! a killed sweep never leaves a torn file behind. The EBM trainer reads the rows back through
//! [`read_nodes`] / [`read_failed`].

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{
    ArrayRef, BooleanArray, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray,
    UInt32Array,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::{ArrowWriter, ProjectionMask};
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use crate::columns::Columns;
use crate::NodeStatus;

/// One search node. `label` is 1 on the proof path (then `remaining_depth` is the number of
/// tactics from this node to the end of the proof) and 0 everywhere else.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeRow {
    pub theorem: String,
    pub node_id: u32,
    /// `None` for the root, and for the root of a subgoal search (see `subgoal_of`).
    pub parent_id: Option<u32>,
    pub depth: u32,
    /// The tactic that led here from the parent; `None` for the root.
    pub tactic: Option<String>,
    /// The goals text (goals joined by a blank line); empty for a completed proof.
    pub state: String,
    pub goal_count: u32,
    /// Log-prob of `tactic` under the policy (0 for the root).
    pub llm_logprob: f64,
    pub cum_logprob: f64,
    /// EBM energy when a value model was configured and the node is not terminal.
    pub energy: Option<f64>,
    /// The frontier priority the node got.
    pub score: f64,
    pub status: NodeStatus,
    pub on_proof_path: bool,
    pub label: i32,
    pub remaining_depth: Option<u32>,
    /// Milliseconds since the theorem's search started.
    pub created_ms: i64,
    /// The sweep run that searched the theorem (its start, Unix ms). A resumed sweep that
    /// searches a theorem again supersedes the earlier run's rows (see [`read_nodes`]).
    pub run_id: i64,
    /// For a node of a subgoal search (`search.decompose`): the id of the conditional node
    /// whose hole opened that search. `None` in the main tree. Files written before the
    /// column existed read as `None`.
    pub subgoal_of: Option<u32>,
}

/// One tactic that Lean did not accept (or that ended in an incomplete proof).
#[derive(Debug, Clone, PartialEq)]
pub struct FailedRow {
    pub theorem: String,
    pub parent_id: u32,
    pub tactic: String,
    /// `error`, `timeout`, `incomplete`, `sorry`, `check_failed`, `transposition` or `banned`.
    pub outcome: String,
    pub message: String,
    /// As [`NodeRow::run_id`].
    pub run_id: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum TrajectoryError {
    #[error("trajectory file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("trajectory file {path}: {source}")]
    Parquet {
        path: PathBuf,
        source: parquet::errors::ParquetError,
    },
    #[error("trajectory file {path}: {message}")]
    Schema { path: PathBuf, message: String },
}

pub fn node_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("theorem", DataType::Utf8, false),
        Field::new("node_id", DataType::UInt32, false),
        Field::new("parent_id", DataType::UInt32, true),
        Field::new("depth", DataType::UInt32, false),
        Field::new("tactic", DataType::Utf8, true),
        Field::new("state", DataType::Utf8, false),
        Field::new("goal_count", DataType::UInt32, false),
        Field::new("llm_logprob", DataType::Float64, false),
        Field::new("cum_logprob", DataType::Float64, false),
        Field::new("energy", DataType::Float64, true),
        Field::new("score", DataType::Float64, false),
        Field::new("status", DataType::Utf8, false),
        Field::new("on_proof_path", DataType::Boolean, false),
        Field::new("label", DataType::Int32, false),
        Field::new("remaining_depth", DataType::UInt32, true),
        Field::new("created_ms", DataType::Int64, false),
        Field::new("run_id", DataType::Int64, false),
        Field::new("subgoal_of", DataType::UInt32, true),
    ]))
}

pub fn failed_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("theorem", DataType::Utf8, false),
        Field::new("parent_id", DataType::UInt32, false),
        Field::new("tactic", DataType::Utf8, false),
        Field::new("outcome", DataType::Utf8, false),
        Field::new("message", DataType::Utf8, false),
        Field::new("run_id", DataType::Int64, false),
    ]))
}

fn nodes_batch(rows: &[NodeRow]) -> RecordBatch {
    let strings = |f: &dyn Fn(&NodeRow) -> &str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(rows.iter().map(f)))
    };
    let u32s = |f: &dyn Fn(&NodeRow) -> u32| -> ArrayRef {
        Arc::new(UInt32Array::from_iter_values(rows.iter().map(f)))
    };
    let f64s = |f: &dyn Fn(&NodeRow) -> f64| -> ArrayRef {
        Arc::new(Float64Array::from_iter_values(rows.iter().map(f)))
    };
    let columns: Vec<ArrayRef> = vec![
        strings(&|r| &r.theorem),
        u32s(&|r| r.node_id),
        Arc::new(rows.iter().map(|r| r.parent_id).collect::<UInt32Array>()),
        u32s(&|r| r.depth),
        Arc::new(
            rows.iter()
                .map(|r| r.tactic.as_deref())
                .collect::<StringArray>(),
        ),
        strings(&|r| &r.state),
        u32s(&|r| r.goal_count),
        f64s(&|r| r.llm_logprob),
        f64s(&|r| r.cum_logprob),
        Arc::new(rows.iter().map(|r| r.energy).collect::<Float64Array>()),
        f64s(&|r| r.score),
        strings(&|r| r.status.as_str()),
        Arc::new(
            rows.iter()
                .map(|r| Some(r.on_proof_path))
                .collect::<BooleanArray>(),
        ),
        Arc::new(Int32Array::from_iter_values(rows.iter().map(|r| r.label))),
        Arc::new(
            rows.iter()
                .map(|r| r.remaining_depth)
                .collect::<UInt32Array>(),
        ),
        Arc::new(Int64Array::from_iter_values(
            rows.iter().map(|r| r.created_ms),
        )),
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.run_id))),
        Arc::new(rows.iter().map(|r| r.subgoal_of).collect::<UInt32Array>()),
    ];
    RecordBatch::try_new(node_schema(), columns).expect("columns match the node schema")
}

fn failed_batch(rows: &[FailedRow]) -> RecordBatch {
    let strings = |f: &dyn Fn(&FailedRow) -> &str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(rows.iter().map(f)))
    };
    let columns: Vec<ArrayRef> = vec![
        strings(&|r| &r.theorem),
        Arc::new(UInt32Array::from_iter_values(
            rows.iter().map(|r| r.parent_id),
        )),
        strings(&|r| &r.tactic),
        strings(&|r| &r.outcome),
        strings(&|r| &r.message),
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.run_id))),
    ];
    RecordBatch::try_new(failed_schema(), columns).expect("columns match the failed schema")
}

/// Writes `batch` to `path` (snappy) via a temporary file renamed into place.
fn write_file(path: &Path, batch: &RecordBatch) -> Result<(), TrajectoryError> {
    let io = |source| TrajectoryError::Io {
        path: path.to_owned(),
        source,
    };
    let pq = |source| TrajectoryError::Parquet {
        path: path.to_owned(),
        source,
    };
    let tmp = path.with_extension("parquet.tmp");
    let file = File::create(&tmp).map_err(io)?;
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build();
    let mut writer = ArrowWriter::try_new(file, batch.schema(), Some(props)).map_err(pq)?;
    writer.write(batch).map_err(pq)?;
    writer.close().map_err(pq)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// Buffers finished theorems and writes them out as new numbered files.
pub struct TrajectoryWriter {
    dir: PathBuf,
    next_index: u32,
    nodes: Vec<NodeRow>,
    failed: Vec<FailedRow>,
    theorems: usize,
    max_theorems: usize,
    max_rows: usize,
}

/// Where the failed-attempt files of the node files in `nodes_dir` live: its sibling
/// `failed_attempts/`.
pub fn failed_dir(nodes_dir: &Path) -> PathBuf {
    nodes_dir
        .parent()
        .unwrap_or_else(|| Path::new("."))
        .join(FAILED_DIR)
}

const FAILED_DIR: &str = "failed_attempts";

impl TrajectoryWriter {
    /// Creates `dir` (node files) and its sibling [`failed_dir`] if needed; numbering continues
    /// after the files already there (resume). A batch is written once it holds
    /// `max_theorems` theorems or `max_rows` node rows.
    pub fn new(dir: &Path, max_theorems: usize, max_rows: usize) -> Result<Self, TrajectoryError> {
        let mut next_index = 0;
        for (folder, prefix) in [(dir.to_owned(), "nodes-"), (failed_dir(dir), "failed-")] {
            let io = |source| TrajectoryError::Io {
                path: folder.clone(),
                source,
            };
            std::fs::create_dir_all(&folder).map_err(io)?;
            for entry in std::fs::read_dir(&folder).map_err(io)? {
                let name = entry.map_err(io)?.file_name();
                let index = name
                    .to_string_lossy()
                    .strip_prefix(prefix)
                    .and_then(|rest| rest.strip_suffix(".parquet"))
                    .and_then(|n| n.parse::<u32>().ok());
                if let Some(i) = index {
                    next_index = next_index.max(i + 1);
                }
            }
        }
        Ok(Self {
            dir: dir.to_owned(),
            next_index,
            nodes: Vec::new(),
            failed: Vec::new(),
            theorems: 0,
            max_theorems: max_theorems.max(1),
            max_rows: max_rows.max(1),
        })
    }

    /// Adds one theorem's rows; writes a batch when the buffer is full. How long rows may wait
    /// is the caller's rule (the sweep flushes on a timer).
    pub fn push(
        &mut self,
        nodes: Vec<NodeRow>,
        failed: Vec<FailedRow>,
    ) -> Result<(), TrajectoryError> {
        self.nodes.extend(nodes);
        self.failed.extend(failed);
        self.theorems += 1;
        if self.theorems >= self.max_theorems || self.nodes.len() >= self.max_rows {
            self.flush()?;
        }
        Ok(())
    }

    /// Theorems whose rows wait in the buffer.
    pub fn buffered_theorems(&self) -> usize {
        self.theorems
    }

    /// Writes whatever is buffered as a new pair of files (nothing if the buffer is empty).
    pub fn flush(&mut self) -> Result<(), TrajectoryError> {
        if self.theorems == 0 {
            return Ok(());
        }
        let index = self.next_index;
        write_file(
            &self.dir.join(format!("nodes-{index:05}.parquet")),
            &nodes_batch(&self.nodes),
        )?;
        write_file(
            &failed_dir(&self.dir).join(format!("failed-{index:05}.parquet")),
            &failed_batch(&self.failed),
        )?;
        self.next_index += 1;
        self.nodes.clear();
        self.failed.clear();
        self.theorems = 0;
        Ok(())
    }
}

fn parquet_error(
    path: &Path,
) -> impl Fn(parquet::errors::ParquetError) -> TrajectoryError + Copy + '_ {
    move |source| TrajectoryError::Parquet {
        path: path.to_owned(),
        source,
    }
}

fn open_reader(path: &Path) -> Result<ParquetRecordBatchReaderBuilder<File>, TrajectoryError> {
    let file = File::open(path).map_err(|source| TrajectoryError::Io {
        path: path.to_owned(),
        source,
    })?;
    ParquetRecordBatchReaderBuilder::try_new(file).map_err(parquet_error(path))
}

/// The batches of one file, each with its columns found by name and read through
/// [`Columns`], which accepts the types pandas and polars write back (see that type).
fn read_batches(path: &Path) -> Result<Vec<RecordBatch>, TrajectoryError> {
    let pq = parquet_error(path);
    let builder = open_reader(path)?;
    // An empty file still has its columns checked.
    let mut batches = vec![RecordBatch::new_empty(builder.schema().clone())];
    for batch in builder.build().map_err(pq)? {
        batches.push(batch.map_err(|e| pq(e.into()))?);
    }
    Ok(batches)
}

/// Drops the rows of superseded runs: within one sweep directory (the files' parent folder)
/// only the latest run of each theorem counts, so a theorem that `--resume` searched again is
/// never read twice. Files of different directories (two sweeps) are independent data.
fn latest_runs<R>(rows: Vec<(PathBuf, R)>, key: impl Fn(&R) -> (&String, i64)) -> Vec<R> {
    let mut latest: HashMap<(PathBuf, String), i64> = HashMap::new();
    for (dir, row) in &rows {
        let (theorem, run) = key(row);
        let entry = latest.entry((dir.clone(), theorem.clone())).or_insert(run);
        *entry = (*entry).max(run);
    }
    rows.into_iter()
        .filter(|(dir, row)| {
            let (theorem, run) = key(row);
            latest[&(dir.clone(), theorem.clone())] == run
        })
        .map(|(_, row)| row)
        .collect()
}

/// Every node row of the given `nodes-*.parquet` files, in file order.
pub fn read_nodes<P: AsRef<Path>>(paths: &[P]) -> Result<Vec<NodeRow>, TrajectoryError> {
    let rows = read_rows(paths, |c, num_rows| {
        let theorem = c.strings("theorem")?;
        let node_id = c.integers::<u32>("node_id")?;
        let parent_id = c.integers::<u32>("parent_id")?;
        let depth = c.integers::<u32>("depth")?;
        let tactic = c.strings("tactic")?;
        let state = c.strings("state")?;
        let goal_count = c.integers::<u32>("goal_count")?;
        let llm_logprob = c.floats("llm_logprob")?;
        let cum_logprob = c.floats("cum_logprob")?;
        let energy = c.floats("energy")?;
        let score = c.floats("score")?;
        let status = c.statuses("status")?;
        let on_proof_path = c.bools("on_proof_path")?;
        let label = c.integers::<i32>("label")?;
        let remaining_depth = c.integers::<u32>("remaining_depth")?;
        let created_ms = c.integers::<i64>("created_ms")?;
        let run_id = c.optional_integers::<i64>("run_id")?;
        let subgoal_of = c.optional_integers::<u32>("subgoal_of")?;
        (0..num_rows)
            .map(|i| {
                Ok(NodeRow {
                    theorem: c.required(&theorem, "theorem", i)?,
                    node_id: c.required(&node_id, "node_id", i)?,
                    parent_id: parent_id[i],
                    depth: c.required(&depth, "depth", i)?,
                    tactic: tactic[i].clone(),
                    state: c.required(&state, "state", i)?,
                    goal_count: c.required(&goal_count, "goal_count", i)?,
                    llm_logprob: c.required(&llm_logprob, "llm_logprob", i)?,
                    cum_logprob: c.required(&cum_logprob, "cum_logprob", i)?,
                    energy: energy[i],
                    score: c.required(&score, "score", i)?,
                    status: c.required(&status, "status", i)?,
                    on_proof_path: c.required(&on_proof_path, "on_proof_path", i)?,
                    label: c.required(&label, "label", i)?,
                    remaining_depth: remaining_depth[i],
                    created_ms: c.required(&created_ms, "created_ms", i)?,
                    run_id: run_id[i].unwrap_or(0),
                    subgoal_of: subgoal_of[i],
                })
            })
            .collect()
    })?;
    Ok(latest_runs(rows, |r| (&r.theorem, r.run_id)))
}

/// Every failed-attempt row of the given `failed-*.parquet` files, in file order.
pub fn read_failed<P: AsRef<Path>>(paths: &[P]) -> Result<Vec<FailedRow>, TrajectoryError> {
    let rows = read_rows(paths, |c, num_rows| {
        let theorem = c.strings("theorem")?;
        let parent_id = c.integers::<u32>("parent_id")?;
        let tactic = c.strings("tactic")?;
        let outcome = c.strings("outcome")?;
        let message = c.strings("message")?;
        let run_id = c.optional_integers::<i64>("run_id")?;
        (0..num_rows)
            .map(|i| {
                Ok(FailedRow {
                    theorem: c.required(&theorem, "theorem", i)?,
                    parent_id: c.required(&parent_id, "parent_id", i)?,
                    tactic: c.required(&tactic, "tactic", i)?,
                    outcome: c.required(&outcome, "outcome", i)?,
                    message: c.required(&message, "message", i)?,
                    run_id: run_id[i].unwrap_or(0),
                })
            })
            .collect()
    })?;
    Ok(latest_runs(rows, |r| (&r.theorem, r.run_id)))
}

/// The rows `of_batch` makes of each record batch of each file (given its columns and row
/// count), in file order, each with the folder of its file (runs are told apart per folder).
fn read_rows<P: AsRef<Path>, T>(
    paths: &[P],
    mut of_batch: impl FnMut(&Columns, usize) -> Result<Vec<T>, TrajectoryError>,
) -> Result<Vec<(PathBuf, T)>, TrajectoryError> {
    let mut rows = Vec::new();
    for path in paths {
        let path = path.as_ref();
        let dir = path.parent().unwrap_or(Path::new("")).to_owned();
        for batch in read_batches(path)? {
            let batch_rows = of_batch(&Columns::new(path, &batch), batch.num_rows())?;
            rows.extend(batch_rows.into_iter().map(|row| (dir.clone(), row)));
        }
    }
    Ok(rows)
}

/// The theorems that have node rows in `paths` (reads only the `theorem` column).
pub fn theorems_in<P: AsRef<Path>>(paths: &[P]) -> Result<HashSet<String>, TrajectoryError> {
    let mut names = HashSet::new();
    for path in paths {
        let path = path.as_ref();
        let pq = parquet_error(path);
        let builder = open_reader(path)?;
        let index = builder
            .schema()
            .index_of("theorem")
            .map_err(|_| TrajectoryError::Schema {
                path: path.to_owned(),
                message: "no `theorem` column".into(),
            })?;
        let mask = ProjectionMask::roots(builder.parquet_schema(), [index]);
        for batch in builder.with_projection(mask).build().map_err(pq)? {
            let batch = batch.map_err(|e| pq(e.into()))?;
            names.extend(
                Columns::new(path, &batch)
                    .strings("theorem")?
                    .into_iter()
                    .flatten(),
            );
        }
    }
    Ok(names)
}

/// The `nodes-*.parquet` files of a sweep's trajectory directory and the `failed-*.parquet`
/// files of its sibling [`failed_dir`] (absent means none), each list sorted by name.
pub fn trajectory_files(dir: &Path) -> std::io::Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let nodes = parquet_files(dir, "nodes-")?;
    let failed = match parquet_files(&failed_dir(dir), "failed-") {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        other => other?,
    };
    Ok((nodes, failed))
}

fn parquet_files(dir: &Path, prefix: &str) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if name.starts_with(prefix) && name.ends_with(".parquet") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(theorem: &str, id: u32, parent: Option<u32>) -> NodeRow {
        NodeRow {
            theorem: theorem.into(),
            node_id: id,
            parent_id: parent,
            depth: parent.map_or(0, |_| 1),
            tactic: parent.map(|_| "simp".to_string()),
            state: format!("⊢ goal {id}"),
            goal_count: 1,
            llm_logprob: -0.5,
            cum_logprob: -0.5 * id as f64,
            energy: id.is_multiple_of(2).then_some(1.25),
            score: -0.25,
            status: NodeStatus::Expanded,
            on_proof_path: id == 0,
            label: i32::from(id == 0),
            remaining_depth: (id == 0).then_some(2),
            created_ms: 7 * id as i64,
            run_id: 1,
            subgoal_of: (id == 3).then_some(1),
        }
    }

    #[test]
    fn rows_round_trip_through_batched_files() {
        let sweep = tempfile::tempdir().unwrap();
        let dir = sweep.path().join("trajectories");
        let mut writer = TrajectoryWriter::new(&dir, 2, 1000).unwrap();
        let failed = FailedRow {
            theorem: "a".into(),
            parent_id: 0,
            tactic: "linarith".into(),
            outcome: "error".into(),
            message: "linarith failed".into(),
            run_id: 1,
        };
        writer
            .push(
                vec![node("a", 0, None), node("a", 1, Some(0))],
                vec![failed.clone()],
            )
            .unwrap();
        writer.push(vec![node("b", 0, None)], vec![]).unwrap(); // fills the batch: file 00000
        writer.push(vec![node("c", 0, None)], vec![]).unwrap();
        writer.flush().unwrap(); // file 00001
        let (nodes, failed_files) = trajectory_files(&dir).unwrap();
        assert_eq!(nodes.len(), 2);
        assert_eq!(failed_files.len(), 2);
        // One schema per folder, so a dataset reader can take the folder whole.
        assert!(failed_files
            .iter()
            .all(|f| f.starts_with(sweep.path().join("failed_attempts"))));
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 2);
        let rows = read_nodes(&nodes).unwrap();
        assert_eq!(
            rows,
            vec![
                node("a", 0, None),
                node("a", 1, Some(0)),
                node("b", 0, None),
                node("c", 0, None)
            ]
        );
        assert_eq!(read_failed(&failed_files).unwrap(), vec![failed]);

        // A resumed writer never touches existing files.
        let mut again = TrajectoryWriter::new(&dir, 2, 1000).unwrap();
        again.push(vec![node("d", 0, None)], vec![]).unwrap();
        again.flush().unwrap();
        let (nodes, _) = trajectory_files(&dir).unwrap();
        assert!(nodes.last().unwrap().ends_with("nodes-00002.parquet"));
        let names = theorems_in(&nodes).unwrap();
        assert_eq!(names, ["a", "b", "c", "d"].map(String::from).into());
    }

    #[test]
    fn wrong_schema_is_an_error_naming_the_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("failed-00000.parquet");
        write_file(&path, &failed_batch(&[])).unwrap();
        let e = read_nodes(&[&path]).unwrap_err().to_string();
        assert!(e.contains("node_id"), "{e}");
    }

    #[test]
    fn a_resumed_run_supersedes_the_earlier_rows_of_the_same_theorem_in_that_folder() {
        let sweep = tempfile::tempdir().unwrap();
        let dir = sweep.path().join("trajectories");
        let mut writer = TrajectoryWriter::new(&dir, 1, 1000).unwrap();
        let mut first = vec![node("a", 0, None), node("a", 1, Some(0))];
        first.iter_mut().for_each(|r| r.run_id = 1);
        writer.push(first, vec![]).unwrap();
        writer.push(vec![node("b", 0, None)], vec![]).unwrap();
        let mut again = node("a", 0, None);
        again.run_id = 2;
        writer.push(vec![again.clone()], vec![]).unwrap();
        let (files, _) = trajectory_files(&dir).unwrap();
        let rows = read_nodes(&files).unwrap();
        assert_eq!(rows, vec![node("b", 0, None), again.clone()]);

        // Another sweep's folder holding the same theorem is separate data.
        let other = tempfile::tempdir().unwrap();
        let other_dir = other.path().join("trajectories");
        let mut writer = TrajectoryWriter::new(&other_dir, 1, 1000).unwrap();
        writer.push(vec![node("a", 0, None)], vec![]).unwrap();
        let (mut more, _) = trajectory_files(&other_dir).unwrap();
        more.extend(files);
        assert_eq!(read_nodes(&more).unwrap().len(), 3);
    }

    /// A batch of the node schema's columns with other arrow types, as pandas or polars write.
    fn retyped(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
        let rows = node_batch_of_one();
        let mut fields = Vec::new();
        let mut arrays = Vec::new();
        for field in node_schema().fields() {
            let array = columns
                .iter()
                .find(|(name, _)| name == field.name())
                .map(|(_, a)| a.clone())
                .unwrap_or_else(|| rows.column_by_name(field.name()).unwrap().clone());
            fields.push(Field::new(field.name(), array.data_type().clone(), true));
            arrays.push(array);
        }
        RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).unwrap()
    }

    fn node_batch_of_one() -> RecordBatch {
        nodes_batch(&[node("a", 3, Some(1))])
    }

    fn read_one(batch: &RecordBatch) -> Result<Vec<NodeRow>, TrajectoryError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nodes-00000.parquet");
        write_file(&path, batch).unwrap();
        read_nodes(&[&path])
    }

    #[test]
    fn pandas_and_polars_types_read_as_the_original() {
        use arrow_array::{Float64Array, LargeStringArray, StringViewArray};
        let batch = retyped(vec![
            ("theorem", Arc::new(LargeStringArray::from(vec!["a"]))),
            ("state", Arc::new(StringViewArray::from(vec!["⊢ goal 3"]))),
            ("node_id", Arc::new(Int64Array::from(vec![3]))),
            ("parent_id", Arc::new(Float64Array::from(vec![1.0]))),
            (
                "remaining_depth",
                Arc::new(Float64Array::from(vec![f64::NAN])),
            ),
            ("label", Arc::new(BooleanArray::from(vec![false]))),
            ("on_proof_path", Arc::new(Int64Array::from(vec![0]))),
        ]);
        assert_eq!(read_one(&batch).unwrap(), vec![node("a", 3, Some(1))]);
    }

    #[test]
    fn values_that_do_not_fit_name_the_column_and_row() {
        use arrow_array::Float64Array;
        let half = retyped(vec![("node_id", Arc::new(Float64Array::from(vec![2.5])))]);
        let e = read_one(&half).unwrap_err().to_string();
        assert!(
            e.contains("column `node_id` row 0: 2.5 is not a whole number"),
            "{e}"
        );
        let negative = retyped(vec![("depth", Arc::new(Int64Array::from(vec![-1])))]);
        let e = read_one(&negative).unwrap_err().to_string();
        assert!(e.contains("column `depth` row 0: -1 does not fit"), "{e}");
        let text = retyped(vec![("score", Arc::new(StringArray::from(vec!["high"])))]);
        let e = read_one(&text).unwrap_err().to_string();
        assert!(
            e.contains("column `score` should be a number column, found Utf8"),
            "{e}"
        );
        let status = retyped(vec![("status", Arc::new(StringArray::from(vec!["done"])))]);
        let e = read_one(&status).unwrap_err().to_string();
        assert!(
            e.contains("column `status` row 0: unknown node status \"done\""),
            "{e}"
        );
    }
}

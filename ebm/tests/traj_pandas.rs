//! A trajectory folder read and saved again by pandas (`pd.read_parquet(dir).to_parquet(f)`,
//! unchanged) gives the same `traj stats` and trains and evaluates like the original. The
//! pandas copy is written here with arrow's own types, as pandas writes them: `large_utf8`
//! strings, nullable integers as `float64` with NaN for null, ids as `int64`, a `bool` label.

use crate::traj_fixture;

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, UInt32Type};
use arrow_array::{
    Array, ArrayRef, BooleanArray, Float64Array, Int64Array, LargeStringArray, RecordBatch,
};
use arrow_schema::{DataType, Field, Schema};
use candle_core::Device;
use ebm::embedding_cache::EmbeddingCache;
use ebm::energy_head::EnergyHead;
use ebm::eval::evaluate;
use ebm::train::{train, TrainConfig};
use ebm::traj_stats::TrajStats;
use ebm::trajectories;
use formats::trajectory::{trajectory_files, FailedRow};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;

/// One column as pandas gives it back.
fn as_pandas(name: &str, column: &ArrayRef) -> ArrayRef {
    match column.data_type() {
        DataType::Utf8 => Arc::new(
            column
                .as_string::<i32>()
                .iter()
                .collect::<LargeStringArray>(),
        ),
        DataType::UInt32 if column.null_count() > 0 || name == "parent_id" => Arc::new(
            column
                .as_primitive::<UInt32Type>()
                .iter()
                .map(|v| Some(v.map_or(f64::NAN, f64::from)))
                .collect::<Float64Array>(),
        ),
        DataType::UInt32 => Arc::new(
            column
                .as_primitive::<UInt32Type>()
                .iter()
                .map(|v| v.map(i64::from))
                .collect::<Int64Array>(),
        ),
        DataType::Int32 => Arc::new(
            column
                .as_primitive::<Int32Type>()
                .iter()
                .map(|v| v.map(|v| v != 0))
                .collect::<BooleanArray>(),
        ),
        _ => column.clone(),
    }
}

/// Reads every file of `from` into one pandas-typed file `to`.
fn pandas_round_trip(from: &[std::path::PathBuf], to: &Path) {
    let mut batches = Vec::new();
    for path in from {
        let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap())
            .unwrap()
            .build()
            .unwrap();
        for batch in reader {
            let batch = batch.unwrap();
            let schema = batch.schema();
            let columns: Vec<ArrayRef> = schema
                .fields()
                .iter()
                .zip(batch.columns())
                .map(|(f, c)| as_pandas(f.name(), c))
                .collect();
            let fields: Vec<Field> = schema
                .fields()
                .iter()
                .zip(&columns)
                .map(|(f, c)| Field::new(f.name(), c.data_type().clone(), true))
                .collect();
            batches.push(RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap());
        }
    }
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    let mut writer =
        ArrowWriter::try_new(File::create(to).unwrap(), batches[0].schema(), None).unwrap();
    for batch in &batches {
        writer.write(batch).unwrap();
    }
    writer.close().unwrap();
}

fn failed(theorem: &str) -> FailedRow {
    FailedRow {
        theorem: theorem.to_owned(),
        parent_id: 0,
        tactic: "linarith".to_owned(),
        outcome: "error".to_owned(),
        message: "linarith failed".to_owned(),
        run_id: 1,
    }
}

#[test]
fn a_pandas_round_trip_gives_the_same_stats_training_and_evaluation() {
    let root = tempfile::tempdir().unwrap();
    let trees = traj_fixture::theorems("t", 40, 11);
    let original = root.path().join("original/trajectories");
    traj_fixture::write(&original, &trees, vec![failed("t0"), failed("t3")]);
    let (nodes, failed_files) = trajectory_files(&original).unwrap();
    let copy = root.path().join("pandas/trajectories");
    pandas_round_trip(&nodes, &copy.join("nodes-00000.parquet"));
    pandas_round_trip(
        &failed_files,
        &root
            .path()
            .join("pandas/failed_attempts/failed-00000.parquet"),
    );
    let written = ParquetRecordBatchReaderBuilder::try_new(
        File::open(copy.join("nodes-00000.parquet")).unwrap(),
    )
    .unwrap();
    let types: Vec<_> = ["theorem", "parent_id", "node_id", "label"]
        .iter()
        .map(|c| {
            written
                .schema()
                .field_with_name(c)
                .unwrap()
                .data_type()
                .clone()
        })
        .collect();
    assert_eq!(
        types,
        [
            DataType::LargeUtf8,
            DataType::Float64,
            DataType::Int64,
            DataType::Boolean
        ]
    );

    let load = |dir: &Path| trajectories::load(&[dir.display().to_string()]).unwrap();
    let (a, a_failed) = load(&original);
    let (b, b_failed) = load(&copy);
    assert_eq!(
        TrajStats::compute(&a, &a_failed),
        TrajStats::compute(&b, &b_failed)
    );

    let cache_path = root.path().join("embeddings.parquet");
    traj_fixture::cache(&[&trees], 4).save(&cache_path).unwrap();
    let cache = EmbeddingCache::load(&cache_path).unwrap();
    let config = TrainConfig {
        epochs: 3,
        batch_size: 16,
        hidden: vec![16],
        seed: 5,
        ..TrainConfig::default()
    };
    let mut outcomes = Vec::new();
    for (name, traj) in [("a", &a), ("b", &b)] {
        let out = root.path().join(format!("run_{name}"));
        let report = train(traj, &cache, &config, &Device::Cpu, &out).unwrap();
        let head = EnergyHead::load(&out.join("head.safetensors"), &Device::Cpu).unwrap();
        let eval = evaluate(traj, &cache, &head, &Device::Cpu).unwrap();
        outcomes.push((serde_json::to_string(&report.epochs).unwrap(), eval));
    }
    assert_eq!(outcomes[0], outcomes[1]);
}

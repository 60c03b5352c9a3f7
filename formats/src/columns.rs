//! Reading trajectory columns by name, accepting what users write back from pandas or polars.
//!
//! `pd.read_parquet(dir).to_parquet(file)` turns our `utf8` strings into `large_utf8`, a
//! nullable `uint32` such as `parent_id` into `float64` with NaN for null, and may widen ids to
//! `int64`; polars writes `utf8_view` strings; a `label` may come back as `bool`. Every integer
//! width whose values fit is accepted, floats only when they hold whole numbers (or NaN, read
//! as null); anything else is an error naming the file, the column and the row.

use std::path::Path;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type, UInt16Type, UInt32Type,
    UInt64Type, UInt8Type,
};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::DataType;

use crate::trajectory::TrajectoryError;
use crate::NodeStatus;

/// One record batch of one file, read column by column.
pub(crate) struct Columns<'a> {
    path: &'a Path,
    batch: &'a RecordBatch,
}

impl<'a> Columns<'a> {
    pub(crate) fn new(path: &'a Path, batch: &'a RecordBatch) -> Self {
        Self { path, batch }
    }

    fn error(&self, message: String) -> TrajectoryError {
        TrajectoryError::Schema {
            path: self.path.to_owned(),
            message,
        }
    }

    fn column(&self, name: &str) -> Result<&'a ArrayRef, TrajectoryError> {
        self.batch
            .column_by_name(name)
            .ok_or_else(|| self.error(format!("no column `{name}`")))
    }

    fn wrong_type(&self, name: &str, expected: &str, found: &DataType) -> TrajectoryError {
        self.error(format!(
            "column `{name}` should be {expected}, found {found}"
        ))
    }

    /// A value the row must have: a null in a column that never holds one is an error.
    pub(crate) fn required<T: Clone>(
        &self,
        values: &[Option<T>],
        name: &str,
        row: usize,
    ) -> Result<T, TrajectoryError> {
        values[row].clone().ok_or_else(|| {
            self.error(format!(
                "column `{name}` row {row}: null where a value is required"
            ))
        })
    }

    pub(crate) fn strings(&self, name: &str) -> Result<Vec<Option<String>>, TrajectoryError> {
        let a = self.column(name)?;
        let owned = |v: Option<&str>| v.map(str::to_owned);
        Ok(match a.data_type() {
            DataType::Utf8 => a.as_string::<i32>().iter().map(owned).collect(),
            DataType::LargeUtf8 => a.as_string::<i64>().iter().map(owned).collect(),
            DataType::Utf8View => a.as_string_view().iter().map(owned).collect(),
            // An all-null column (e.g. `tactic` in a file holding only roots) may come back
            // typed as null.
            DataType::Null => vec![None; a.len()],
            other => return Err(self.wrong_type(name, "a string column", other)),
        })
    }

    pub(crate) fn floats(&self, name: &str) -> Result<Vec<Option<f64>>, TrajectoryError> {
        let a = self.column(name)?;
        Ok(match a.data_type() {
            DataType::Float64 => a.as_primitive::<Float64Type>().iter().collect(),
            DataType::Float32 => a
                .as_primitive::<Float32Type>()
                .iter()
                .map(|v| v.map(f64::from))
                .collect(),
            DataType::Null => vec![None; a.len()],
            _ => self
                .whole_numbers(name, a, "a number column")?
                .into_iter()
                .map(|v| v.map(|v| v as f64))
                .collect(),
        })
    }

    /// Integers of any width (or floats holding whole numbers, NaN as null), each checked to
    /// fit `T`.
    pub(crate) fn integers<T: TryFrom<i128>>(
        &self,
        name: &str,
    ) -> Result<Vec<Option<T>>, TrajectoryError> {
        let a = self.column(name)?;
        let values = match a.data_type() {
            DataType::Float64 | DataType::Float32 => self
                .floats(name)?
                .into_iter()
                .enumerate()
                .map(|(row, v)| match v {
                    Some(f) if f.is_nan() => Ok(None),
                    Some(f) if f.fract() == 0.0 && f.abs() < 2f64.powi(63) => Ok(Some(f as i128)),
                    Some(f) => Err(self.error(format!(
                        "column `{name}` row {row}: {f} is not a whole number"
                    ))),
                    None => Ok(None),
                })
                .collect::<Result<Vec<_>, _>>()?,
            _ => self.whole_numbers(name, a, "an integer column")?,
        };
        values
            .into_iter()
            .enumerate()
            .map(|(row, v)| {
                v.map(|v| {
                    T::try_from(v).map_err(|_| {
                        self.error(format!(
                            "column `{name}` row {row}: {v} does not fit a {}",
                            std::any::type_name::<T>()
                        ))
                    })
                })
                .transpose()
            })
            .collect()
    }

    fn whole_numbers(
        &self,
        name: &str,
        a: &ArrayRef,
        expected: &str,
    ) -> Result<Vec<Option<i128>>, TrajectoryError> {
        macro_rules! widen {
            ($t:ty) => {
                a.as_primitive::<$t>()
                    .iter()
                    .map(|v| v.map(i128::from))
                    .collect()
            };
        }
        Ok(match a.data_type() {
            DataType::Int8 => widen!(Int8Type),
            DataType::Int16 => widen!(Int16Type),
            DataType::Int32 => widen!(Int32Type),
            DataType::Int64 => widen!(Int64Type),
            DataType::UInt8 => widen!(UInt8Type),
            DataType::UInt16 => widen!(UInt16Type),
            DataType::UInt32 => widen!(UInt32Type),
            DataType::UInt64 => widen!(UInt64Type),
            DataType::Boolean => a.as_boolean().iter().map(|v| v.map(i128::from)).collect(),
            DataType::Null => vec![None; a.len()],
            other => return Err(self.wrong_type(name, expected, other)),
        })
    }

    /// As [`Columns::integers`], all null when the file predates the column.
    pub(crate) fn optional_integers<T: TryFrom<i128>>(
        &self,
        name: &str,
    ) -> Result<Vec<Option<T>>, TrajectoryError> {
        if self.batch.column_by_name(name).is_none() {
            return Ok((0..self.batch.num_rows()).map(|_| None).collect());
        }
        self.integers(name)
    }

    /// Booleans, or integers that are 0 or 1.
    pub(crate) fn bools(&self, name: &str) -> Result<Vec<Option<bool>>, TrajectoryError> {
        let a = self.column(name)?;
        if a.data_type() == &DataType::Boolean {
            return Ok(a.as_boolean().iter().collect());
        }
        self.integers::<u8>(name)?
            .into_iter()
            .enumerate()
            .map(|(row, v)| match v {
                None => Ok(None),
                Some(0) => Ok(Some(false)),
                Some(1) => Ok(Some(true)),
                Some(other) => Err(self.error(format!(
                    "column `{name}` row {row}: {other} is not a boolean (0 or 1)"
                ))),
            })
            .collect()
    }

    pub(crate) fn statuses(&self, name: &str) -> Result<Vec<Option<NodeStatus>>, TrajectoryError> {
        self.strings(name)?
            .into_iter()
            .enumerate()
            .map(|(row, v)| {
                v.map(|s| {
                    s.parse()
                        .map_err(|e| self.error(format!("column `{name}` row {row}: {e}")))
                })
                .transpose()
            })
            .collect()
    }
}

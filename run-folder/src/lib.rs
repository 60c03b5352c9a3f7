//! A sweep's run folder, read back: the statistics of `results.jsonl` and `runs.jsonl`
//! ([`summary`]), `report.md` ([`report`]), `report.html` ([`report_html`]), what
//! `stepwise watch` shows ([`watch`]), `stepwise merge` of shard folders ([`merge`]) and
//! `stepwise compare` ([`compare`]).
//!
//! Everything here works from the folder's files alone (the formats in `formats`), so it runs
//! in any process, on any node that sees the folder, while the sweep runs or long after; it
//! never depends on the engine (`search`) or on Lean access (`lean-bridge`).

use std::path::Path;

pub mod compare;
pub mod merge;
pub mod report;
pub mod report_html;
pub mod summary;
pub mod watch;

pub use summary::{Summary, SummaryError};

/// Rebuilds `summary.json`, `report.md` and `report.html` in `dir` from its files; the
/// [`Summary`] they show.
pub fn write_reports(dir: &Path) -> Result<Summary, SummaryError> {
    let summary = Summary::from_dir(dir)?;
    summary.write_json(dir)?;
    summary::write_file(&dir.join(report::REPORT_FILE), &report::render(&summary))?;
    report_html::write(dir, &summary)?;
    Ok(summary)
}

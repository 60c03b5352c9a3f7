//! Appending to a run folder's line files (`runs.jsonl`, `generate_timeline.jsonl`): one
//! `write_all` of the whole text on a file opened for append, created if absent.

use std::io::Write;
use std::path::Path;

pub fn append_text(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?
        .write_all(text.as_bytes())
}

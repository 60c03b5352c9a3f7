//! Writing a run folder's small files: appending to its line files (`runs.jsonl`,
//! `generate_timeline.jsonl`) with one `write_all` of the whole text on a file opened for
//! append, created if absent; and rewriting a whole file (`progress.json`, `iterate.json`)
//! through a sibling temporary file.

use std::io::Write;
use std::path::Path;

pub fn append_text(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?
        .write_all(text.as_bytes())
}

/// Writes `PATH.tmp` and renames it over `path`, so a reader on any node sees the old file or
/// the new one, never half of one.
pub fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

//! What every benchmark of this crate shares: where results go and what machine made them.

#![allow(dead_code)] // each bench uses a different part

use std::path::PathBuf;

/// `target/bench/` (or `$CARGO_TARGET_DIR/bench/`).
pub fn out_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("bench")
}

/// Writes `target/bench/NAME.json`: the result with the machine and the time it ran.
pub fn write_result(name: &str, result: &serde_json::Value) {
    let dir = out_dir();
    std::fs::create_dir_all(&dir).expect("create target/bench");
    let record = serde_json::json!({
        "bench": name,
        "unix_time": std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        "machine": machine(),
        "result": result,
    });
    let path = dir.join(format!("{name}.json"));
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&record).expect("json") + "\n",
    )
    .expect("write bench result");
    println!("wrote {}", path.display());
}

/// CPU model and count, from /proc/cpuinfo and the scheduler's view.
pub fn machine() -> serde_json::Value {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_default();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    serde_json::json!({ "cpu_model": model, "cpus": cpus })
}

pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

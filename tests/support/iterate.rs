//! `stepwise iterate` of the real binary over a generated signal world
//! (`sim::signal_world`): the simulated SGLang in the caller's process, the simulated REPL
//! (`stepwise sim repl`) as the Lean workers and `stepwise ebm serve` on the tiny committed
//! Llama as the value model. Shared by the end-to-end tests (`tests/iterate_e2e.rs`) and
//! `cargo bench --bench iterate`, which includes this file by path, so it names nothing
//! outside itself.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;
use sim::signal_world::{split, SignalWorld};

/// The committed tiny Llama (`ebm/tests/data/tiny-llama`): random weights, 64 wide.
pub fn tiny_llama() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("ebm/tests/data/tiny-llama")
}

pub fn stepwise() -> &'static str {
    env!("CARGO_BIN_EXE_stepwise")
}

/// A free loopback port (bound, read, released) for an `ebm serve` to listen on.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// The loop's files under one folder: the world and its two theorem sets.
pub struct LoopFiles {
    pub world: PathBuf,
    pub train: PathBuf,
    pub eval: PathBuf,
    pub train_names: Vec<String>,
    pub eval_names: Vec<String>,
}

/// Writes `shape`'s world to `dir`, with every `eval_every`-th theorem in the eval set.
pub fn write_world(dir: &Path, shape: &SignalWorld, eval_every: usize) -> LoopFiles {
    let world = shape.build();
    let (train, eval) = split(&world, eval_every);
    let files = LoopFiles {
        world: dir.join("world.json"),
        train: dir.join("train.jsonl"),
        eval: dir.join("eval.jsonl"),
        train_names: train.iter().map(|t| t.name.clone()).collect(),
        eval_names: eval.iter().map(|t| t.name.clone()).collect(),
    };
    std::fs::write(&files.world, serde_json::to_vec(&world).unwrap()).unwrap();
    for (path, theorems) in [(&files.train, &train), (&files.eval, &eval)] {
        let lines: String = theorems
            .iter()
            .map(|t| serde_json::to_string(t).unwrap() + "\n")
            .collect();
        std::fs::write(path, lines).unwrap();
    }
    files
}

/// The search every sweep of the loop runs: every tactic of a state sampled once
/// (`num_candidates` covers them), the log-prob averaged over depth (`length_norm = 1`) so a
/// node's priority does not sink with its depth and energies weigh the same at every level.
pub const CONFIG: &str = r#"
[search]
max_nodes = 80
max_depth = 12
num_candidates = 8
timeout_per_theorem = 120
ebm_weight = 0.5
length_norm = 1.0

[policy]
sampling = "n"
request_timeout = 30
max_retries = 2

[lean]
workers = 4
header = "import Mathlib"
tactic_timeout = 30

[ebm]
request_timeout = 30

[sweep]
concurrency = 4
"#;

/// Heads small enough to train in seconds, on sibling negatives only: each decision of the
/// world has one path child and its dead ends, so every group holds exactly the search's
/// choice (and shuffled labels leave nothing to learn).
pub const TRAINING: &[&str] = &[
    "--hidden",
    "32",
    "--epochs",
    "8",
    "--lr",
    "0.003",
    "--batch-size",
    "16",
    "--negatives",
    "4",
    "--hard-ratio",
    "1",
    "--medium-ratio",
    "0",
    "--val-fraction",
    "0.2",
];

/// `--set` flags that point a config at the simulators.
pub fn placement(files: &LoopFiles, policy_url: &str, ebm_port: u16) -> Vec<String> {
    let lean = json!([stepwise(), "sim", "repl", "--world", files.world]);
    [
        format!("lean.command={lean}"),
        format!("policy.urls={}", json!([policy_url])),
        format!("ebm.url=\"http://127.0.0.1:{ebm_port}\""),
    ]
    .into_iter()
    .flat_map(|set| ["--set".to_owned(), set])
    .collect()
}

/// The argv of `stepwise ebm serve` on the tiny Llama at `port`, no head.
pub fn ebm_serve_argv(port: u16) -> Vec<String> {
    [
        stepwise(),
        "ebm",
        "serve",
        "--model",
        &tiny_llama().display().to_string(),
        "--port",
        &port.to_string(),
    ]
    .map(str::to_owned)
    .to_vec()
}

/// `stepwise iterate` of `files` into `out` with `CONFIG` (written to `config`) plus
/// `placement` and `extra` flags (the training flags among them: [`TRAINING`], say).
pub fn iterate(
    files: &LoopFiles,
    config: &Path,
    out: &Path,
    rounds: usize,
    placement: &[String],
    extra: &[&str],
) -> Command {
    std::fs::write(config, CONFIG).unwrap();
    let mut cmd = Command::new(stepwise());
    cmd.arg("iterate")
        .arg("--config")
        .arg(config)
        .arg("--train")
        .arg(&files.train)
        .arg("--eval")
        .arg(&files.eval)
        .arg("--rounds")
        .arg(rounds.to_string())
        .arg("--out")
        .arg(out)
        .args(placement)
        .args(extra);
    cmd
}

//! A Lean pool over the simulated REPL as a process (`stepwise sim repl`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use formats::theorems::Theorem;
use lean_bridge::{LeanConfig, LeanPool, Session, StateId, TacticOutcome};
use sim::world::World;

/// The argv that starts the simulated REPL: this package's binary, `sim repl`.
pub fn sim_repl() -> Vec<String> {
    vec![
        env!("CARGO_BIN_EXE_stepwise").to_owned(),
        "sim".to_owned(),
        "repl".to_owned(),
    ]
}

pub fn world_path() -> PathBuf {
    super::data("lean_world.json")
}

/// One worker running `stepwise sim repl --world WORLD FLAGS...`, short timeouts.
pub fn config(world: &Path, flags: &[&str]) -> LeanConfig {
    let mut command = sim_repl();
    command.extend(["--world".to_owned(), world.display().to_string()]);
    command.extend(flags.iter().map(|f| f.to_string()));
    LeanConfig {
        command,
        workers: 1,
        header: "import Mathlib\nopen Nat".into(),
        tactic_timeout: 10.0,
        header_timeout: 10.0,
        ..LeanConfig::default()
    }
}

pub fn theorem(world: &World, name: &str) -> Theorem {
    world
        .theorem(name)
        .unwrap_or_else(|| panic!("no theorem {name}"))
        .input()
}

/// A worker that hangs on `trivial` (and is killed after 0.5 s), logging its requests to
/// `log`, with more REPL `flags`.
pub fn hanging_on_trivial(log: &Path, flags: &[&str]) -> LeanConfig {
    let mut argv = vec!["--hang-on", "trivial", "--log", log.to_str().unwrap()];
    argv.extend_from_slice(flags);
    let mut config = config(&world_path(), &argv);
    config.tactic_timeout = 0.5;
    config
}

/// A session on the theorem `name` of `lean_world.json`.
pub async fn start(pool: &Arc<LeanPool>, name: &str) -> Session {
    pool.start_theorem(&theorem(&super::load_world(&world_path()), name))
        .await
        .unwrap()
}

/// A theorem named `t` with this statement, for statements no world lists.
pub fn statement(text: &str) -> Theorem {
    Theorem {
        name: "t".into(),
        formal_statement: text.into(),
        header: None,
        extra: Default::default(),
    }
}

/// Applies `tactics` from `state`, each of which must make progress; returns the last state.
pub async fn apply_all(session: &mut Session, mut state: StateId, tactics: &[&str]) -> StateId {
    for tactic in tactics {
        match session.apply(state, tactic).await.unwrap() {
            TacticOutcome::Progress { state: next, .. } => state = next,
            other => panic!("{tactic}: {other:?}"),
        }
    }
    state
}

/// The requests the simulated REPL logged, one JSON value per request.
pub fn logged_requests(log: &Path) -> Vec<serde_json::Value> {
    super::read_jsonl(log)
}

/// Each simulated REPL process's requests, in order, from the `*.jsonl` logs in `dir` (one
/// per process: `{pid}` in `--log`), in file-name order.
pub fn logs_per_process(dir: &Path) -> Vec<Vec<serde_json::Value>> {
    let mut logs: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    logs.sort();
    logs.iter().map(|p| super::read_jsonl(p)).collect()
}

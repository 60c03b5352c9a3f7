//! Helpers shared by the Lean bridge's integration tests: a pool config that runs the
//! simulated REPL as a process (`stepwise sim repl`).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use lean_bridge::{LeanConfig, Theorem};
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
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/lean_world.json")
}

pub fn load_world(path: &Path) -> World {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
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
    let t = world
        .theorem(name)
        .unwrap_or_else(|| panic!("no theorem {name}"));
    Theorem {
        name: t.name.clone(),
        formal_statement: t.formal_statement.clone(),
        header: None,
        extra: Default::default(),
    }
}

/// The requests the simulated REPL logged, one JSON value per request.
pub fn logged_requests(log: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

//! Helpers shared by the integration tests: a pool config that runs the fake REPL process.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use lean_bridge::sim_world::World;
use lean_bridge::{LeanConfig, Theorem};

pub fn fake_repl() -> &'static str {
    env!("CARGO_BIN_EXE_fake-repl")
}

pub fn world_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/world.json")
}

pub fn load_world(path: &Path) -> World {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// One worker running `fake-repl --world WORLD FLAGS...`, short timeouts.
pub fn config(world: &Path, flags: &[&str]) -> LeanConfig {
    let mut command = vec![
        fake_repl().to_owned(),
        "--world".to_owned(),
        world.display().to_string(),
    ];
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

/// The requests the fake REPL logged, one JSON value per request.
pub fn logged_requests(log: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

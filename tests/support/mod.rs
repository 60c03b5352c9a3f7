//! Helpers the root integration tests share. They run the real binary (`stepwise sweep`,
//! `stepwise sim repl`) against the simulators, so the setup lives here once: the data files,
//! a Lean pool over the simulated REPL ([`lean`]) and a sweep over both simulators
//! ([`sweep`]). Each test file uses part of it.

pub mod iterate;
pub mod lean;
pub mod sweep;

use std::path::{Path, PathBuf};

use serde_json::Value;
use sim::world::World;

/// A file under `tests/data/`.
pub fn data(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(file)
}

pub fn load_world(path: &Path) -> World {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// One JSON value per line; a file not written yet reads as empty.
pub fn read_jsonl(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

pub fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A policy model folder as DeepSeek-Prover's reads for its BOS, without weights: the BOS as
/// an AddedToken object in `tokenizer_config.json`, its id in `tokenizer.json`'s
/// `added_tokens` and `config.json`; the simulated SGLang's tokenizer has the same BOS.
pub fn deepseek_model_dir() -> tempfile::TempDir {
    use sim::sglang::{BOS_ID, BOS_TEXT};
    let dir = tempfile::tempdir().unwrap();
    let files = [
        (
            "tokenizer_config.json",
            serde_json::json!({"bos_token": {"__type": "AddedToken", "content": BOS_TEXT},
                "add_bos_token": true, "tokenizer_class": "LlamaTokenizerFast"}),
        ),
        (
            "tokenizer.json",
            serde_json::json!({"added_tokens": [{"id": BOS_ID, "content": BOS_TEXT, "special": true}]}),
        ),
        ("config.json", serde_json::json!({"bos_token_id": BOS_ID})),
    ];
    for (name, json) in files {
        std::fs::write(dir.path().join(name), json.to_string()).unwrap();
    }
    dir
}

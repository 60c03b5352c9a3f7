//! Every preset in configs/ must load, so none can rot.

use std::path::Path;

#[test]
fn every_config_preset_loads() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs");
    let mut loaded = 0;
    for entry in std::fs::read_dir(&dir).expect("configs/ exists") {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            search::Config::load(&path, &[]).unwrap_or_else(|e| panic!("{e}"));
            loaded += 1;
        }
    }
    assert!(
        loaded >= 3,
        "expected default, minif2f and demo presets, found {loaded}"
    );
}

#[test]
fn default_preset_matches_built_in_defaults() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/default.toml");
    let from_file = search::Config::load(&path, &[]).unwrap();
    assert_eq!(from_file, search::Config::default());
}

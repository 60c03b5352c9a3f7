//! `stepwise sweep` end to end against REPL behaviours of the real stack (see
//! `lean_bridge_real_repl.rs`): the real binary, the simulated REPL as its workers, the
//! simulated SGLang in this process, over `tests/data/real_repl_world.json`.

use crate::support;

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{json, Value};
use support::sweep::{ok, results, SweepSetup};

const REAL_REPL_WORLD: SweepSetup = SweepSetup {
    world: "real_repl_world.json",
    theorems: "real_repl_theorems.jsonl",
    config: support::sweep::CONFIG,
};

/// Deeper trees than the shared config allows: `deep` needs them.
const DEEPER: [&str; 6] = [
    "--set",
    "search.max_nodes=30",
    "--set",
    "search.max_depth=12",
    "--set",
    "search.timeout_per_theorem=120",
];

/// Runs a sweep into `dir/out` with the simulated REPL given `repl_flags`; returns each
/// theorem's results line.
async fn sweep(
    dir: &Path,
    out: &str,
    repl_flags: &[&str],
    extra: &[&str],
) -> BTreeMap<String, Value> {
    let server = REAL_REPL_WORLD.sglang(Default::default()).await;
    let args: Vec<&str> = DEEPER.iter().chain(extra).copied().collect();
    ok(REAL_REPL_WORLD
        .run(dir, out, &server.url(), repl_flags, &args)
        .await);
    results(&dir.join(out))
        .into_iter()
        .map(|r| (r["name"].as_str().unwrap().to_owned(), r))
        .collect()
}

fn proved(results: &BTreeMap<String, Value>) -> Vec<&str> {
    results
        .iter()
        .filter(|(_, r)| r["proved"] == true)
        .map(|(name, _)| name.as_str())
        .collect()
}

/// Issue 11, "What it must show": a REPL process that dies on its 7th request (the header
/// import and the theorem start count) proves exactly what the fault-free sweep proves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repl_dying_on_its_seventh_request_proves_what_a_sound_one_proves() {
    let dir = tempfile::tempdir().unwrap();
    let sound = sweep(dir.path(), "sound", &[], &[]).await;
    let flaky = sweep(dir.path(), "flaky", &["--crash-after", "6"], &[]).await;
    assert!(proved(&sound).contains(&"deep"), "{:?}", proved(&sound));
    assert!(!proved(&sound).contains(&"stuck"));
    assert_eq!(proved(&flaky), proved(&sound));
    for (name, r) in &flaky {
        assert_ne!(r["status"], "error", "{name}: {r}");
        assert_eq!(r["proof_tactics"], sound[name]["proof_tactics"], "{name}");
    }
    let imports = std::fs::read_to_string(dir.path().join("flaky.log"))
        .unwrap()
        .lines()
        .filter(|l| l.contains("\"cmd\":\"import"))
        .count();
    assert!(
        imports > 2,
        "the workers did die ({imports} header imports)"
    );
}

/// With `sorry` taken off `banned_tactics` it reaches Lean; its answer (tactic-mode
/// `sorries`, no `pos`) is a failed attempt, never a child and never a worker fault.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unbanned_sorry_is_a_failed_attempt_and_the_theorem_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let results = sweep(
        dir.path(),
        "unbanned",
        &[],
        &["--set", "search.banned_tactics=[]"],
    )
    .await;
    let r = &results["sorry_stop"];
    assert_eq!(r["proved"], true, "{r}");
    assert!(r["sorries"].as_u64().unwrap() >= 1, "{r}");
    assert_eq!(
        r["proof_tactics"],
        json!(["constructor", "exact hp", "exact hq"])
    );
    // The repl's status can be wrong with empty goals; the whole-proof check decides.
    assert_eq!(
        results["misreported"]["proved"], true,
        "{}",
        results["misreported"]
    );
}

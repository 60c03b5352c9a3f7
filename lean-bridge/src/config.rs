//! The `[lean]` section of the config.

use serde::{Deserialize, Serialize};

/// How to start and run Lean REPL workers. Defaults are the tuned values docs/design.md lists.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LeanConfig {
    /// argv of the REPL (no shell), e.g. `["lake", "env", "repl"]`.
    pub command: Vec<String>,
    /// Working directory of the REPL process (the Lean project with Mathlib).
    pub cwd: String,
    /// Number of REPL processes in the pool.
    pub workers: usize,
    /// Default header command; a theorem's own `header` replaces it.
    pub header: String,
    /// Seconds before a tactic (or any request) is declared hung and the worker killed.
    pub tactic_timeout: f64,
    /// Seconds allowed for importing a header (Mathlib takes a while).
    pub header_timeout: f64,
    /// Recycle a worker after this many requests (the REPL never frees states).
    pub max_requests_per_worker: u64,
    /// Recycle a worker whose resident memory passes this many MiB.
    pub max_rss_mb: u64,
    /// argv prefix put before `command`, e.g. a bwrap invocation.
    pub sandbox: Vec<String>,
    /// Axioms a verified proof may depend on; anything else (sorryAx above all) rejects it.
    pub allowed_axioms: Vec<String>,
    /// Worker faults one theorem may suffer before it is recorded as an infrastructure error.
    pub max_faults_per_theorem: u32,
}

impl Default for LeanConfig {
    fn default() -> Self {
        Self {
            command: vec!["lake".into(), "env".into(), "repl".into()],
            cwd: ".".into(),
            workers: 10,
            header: "import Mathlib\nimport Aesop\nset_option maxHeartbeats 400000\nopen BigOperators Real Nat Topology Rat".into(),
            tactic_timeout: 60.0,
            header_timeout: 600.0,
            max_requests_per_worker: 5000,
            max_rss_mb: 16000,
            sandbox: Vec::new(),
            allowed_axioms: vec!["propext".into(), "Classical.choice".into(), "Quot.sound".into()],
            max_faults_per_theorem: 5,
        }
    }
}

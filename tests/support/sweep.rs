//! `stepwise sweep` of the real binary with the simulated REPL (`stepwise sim repl`) as its
//! Lean workers and the simulated SGLang in the test's process, both over one world file.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;

use serde_json::{json, Value};
use sim::sglang::{SglangHandle, SglangOptions};
use sim::world::World;
use tokio::process::Command;

use super::data;

/// The config most sweep tests share: small trees, two workers, two theorems at once.
pub const CONFIG: &str = r#"
[search]
max_nodes = 20
max_depth = 8
num_candidates = 4
timeout_per_theorem = 60

[policy]
request_timeout = 10
max_retries = 4

[lean]
workers = 2
header = "import Mathlib"
tactic_timeout = 10

[sweep]
concurrency = 2
"#;

/// What a sweep runs on: files under `tests/data/` and the config text.
#[derive(Clone, Copy)]
pub struct SweepSetup {
    pub world: &'static str,
    pub theorems: &'static str,
    pub config: &'static str,
}

/// `sweep_world.json` with its theorems under [`CONFIG`].
pub const SWEEP_WORLD: SweepSetup = SweepSetup {
    world: "sweep_world.json",
    theorems: "sweep_theorems.jsonl",
    config: CONFIG,
};

/// `decompose_world.json` under [`CONFIG`]: `have` chains whose statements are right and
/// whose inner proofs fail (`dc_chain`), a false `have` (`dc_false`), a lemma two branches
/// need (`dc_shared`), one only a planner's sketch proves (`dc_planned`), and one plain search
/// proves (`dc_plain`).
pub const DECOMPOSE_WORLD: SweepSetup = SweepSetup {
    world: "decompose_world.json",
    theorems: "decompose_theorems.jsonl",
    config: CONFIG,
};

impl SweepSetup {
    /// A proof-mode sweep into `dir/out` with one REPL process and one theorem at a time, so
    /// the REPL's request log and its answer log (`dir/out.answers`) pair line by line;
    /// results by theorem name.
    pub async fn proof_sweep(
        &self,
        dir: &Path,
        out: &str,
        url: &str,
        extra: &[&str],
    ) -> BTreeMap<String, Value> {
        let answers = dir.join(format!("{out}.answers"));
        let repl = ["--log-answers", answers.to_str().unwrap()];
        let mut args = vec![
            "--concurrency",
            "1",
            "--set",
            "lean.workers=1",
            "--set",
            "search.expansion=proof",
        ];
        args.extend(extra);
        ok(self.run(dir, out, url, &repl, &args).await);
        results(&dir.join(out))
            .into_iter()
            .map(|r| (r["name"].as_str().unwrap().to_owned(), r))
            .collect()
    }

    pub fn world(&self) -> World {
        super::load_world(&data(self.world))
    }

    /// The simulated SGLang over this world.
    pub async fn sglang(&self, options: SglangOptions) -> SglangHandle {
        sim::sglang::spawn(self.world(), options).await.unwrap()
    }

    /// `stepwise sweep` into `dir/out` against `url`, the simulated REPL (run with
    /// `repl_flags`) logging every request to `dir/out.log`; `extra` are more sweep arguments.
    pub fn command(
        &self,
        dir: &Path,
        out: &str,
        url: &str,
        repl_flags: &[&str],
        extra: &[&str],
    ) -> Command {
        let config = dir.join("config.toml");
        std::fs::write(&config, self.config).unwrap();
        let mut lean = vec![
            json!(env!("CARGO_BIN_EXE_stepwise")),
            json!("sim"),
            json!("repl"),
            json!("--world"),
            json!(data(self.world)),
            json!("--log"),
            json!(dir.join(format!("{out}.log"))),
        ];
        lean.extend(repl_flags.iter().map(|f| json!(f)));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_stepwise"));
        cmd.arg("sweep")
            .arg("--config")
            .arg(&config)
            .arg("--theorems")
            .arg(data(self.theorems))
            .arg("--out")
            .arg(dir.join(out))
            .args(["--set", &format!("lean.command={}", Value::from(lean))])
            .args(["--set", &format!("policy.urls={}", json!([url]))])
            .args(extra)
            .kill_on_drop(true);
        cmd
    }

    /// `stepwise verify` of each proved theorem's `proof_tactics` in `results` (by name),
    /// with the simulated REPL over this world and the config [`Self::command`] wrote to
    /// `dir`; the verdict lines.
    pub fn verify(&self, dir: &Path, results: &BTreeMap<String, Value>) -> Vec<Value> {
        let statements: BTreeMap<String, String> = super::read_jsonl(&data(self.theorems))
            .into_iter()
            .map(|t| {
                let name = t["name"].as_str().unwrap().to_owned();
                (name, t["formal_statement"].as_str().unwrap().to_owned())
            })
            .collect();
        let lines: Vec<String> = results
            .values()
            .filter(|r| r["proved"] == true)
            .map(|r| {
                let name = r["name"].as_str().unwrap();
                let tactics: Vec<&str> = r["proof_tactics"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| t.as_str().unwrap())
                    .collect();
                json!({"name": name, "formal_statement": statements[name], "proof": tactics.join("\n")})
                    .to_string()
            })
            .collect();
        let proofs = dir.join("proofs.jsonl");
        std::fs::write(&proofs, lines.join("\n") + "\n").unwrap();
        let lean = json!([
            env!("CARGO_BIN_EXE_stepwise"),
            "sim",
            "repl",
            "--world",
            data(self.world)
        ]);
        let out = dir.join("verdicts.jsonl");
        ok(std::process::Command::new(env!("CARGO_BIN_EXE_stepwise"))
            .args(["verify", "--config"])
            .arg(dir.join("config.toml"))
            .arg("--proofs")
            .arg(&proofs)
            .arg("--out")
            .arg(&out)
            .args(["--set", &format!("lean.command={lean}")])
            .output()
            .unwrap());
        super::read_jsonl(&out)
    }

    /// Runs [`Self::command`] to the end, successful or not.
    pub async fn run(
        &self,
        dir: &Path,
        out: &str,
        url: &str,
        repl_flags: &[&str],
        extra: &[&str],
    ) -> Output {
        self.command(dir, out, url, repl_flags, extra)
            .output()
            .await
            .unwrap()
    }
}

/// The output of a command that must have succeeded.
pub fn ok(output: Output) -> Output {
    assert!(
        output.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// The stderr of a command that must have failed.
pub fn refused(output: Output) -> String {
    assert!(!output.status.success(), "expected a refusal");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `stepwise ARGS...`, which must succeed.
pub fn run_stepwise(args: &[&str]) -> Output {
    ok(std::process::Command::new(env!("CARGO_BIN_EXE_stepwise"))
        .args(args)
        .output()
        .unwrap())
}

/// The sum of a results field over theorems.
pub fn total(results: &BTreeMap<String, Value>, key: &str) -> u64 {
    results.values().map(|r| r[key].as_u64().unwrap()).sum()
}

/// The names of the proved theorems, sorted.
pub fn proved(results: &BTreeMap<String, Value>) -> Vec<&str> {
    results
        .iter()
        .filter(|(_, r)| r["proved"] == true)
        .map(|(name, _)| name.as_str())
        .collect()
}

pub fn results(dir: &Path) -> Vec<Value> {
    super::read_jsonl(&dir.join("results.jsonl"))
}

/// Per theorem, only the `keys` of its results line: what a comparison cares about.
pub fn outcomes(dir: &Path, keys: &[&str]) -> BTreeMap<String, Value> {
    results(dir)
        .into_iter()
        .map(|r| {
            let kept: serde_json::Map<String, Value> = keys
                .iter()
                .map(|k| (k.to_string(), r[*k].clone()))
                .collect();
            (r["name"].as_str().unwrap().to_owned(), Value::Object(kept))
        })
        .collect()
}

/// The tactics the simulated REPL received, in order (its log holds one request per line).
/// A line torn by a killed REPL is skipped.
pub fn tactics_sent(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|r| r["tactic"].as_str().map(String::from))
        .collect()
}

//! What every benchmark of this crate (and the root crate's `iterate`, which includes this file
//! by path) shares: where results go and what machine made them.

#![allow(dead_code)] // each bench uses a different part

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use lean_bridge::{LeanConfig, LeanPool};
use search::config::{Config, Sampling};
use search::lean_env::LeanEnv;
use search::policy::build_policy;
use search::request_setup::RequestSetup;
use search::sweep::{run_sweep, Backends, SweepOptions};
use sim::sglang::{SglangHandle, SglangOptions};
use sim::world::{World, WorldTheorem};

/// `target/bench/` (or `$CARGO_TARGET_DIR/bench/`) of the workspace: the root crate's
/// benches include this file too, so the workspace is found from whichever package builds it.
pub fn out_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let package = Path::new(env!("CARGO_MANIFEST_DIR"));
            package
                .ancestors()
                .find(|dir| dir.join("Cargo.lock").exists())
                .unwrap_or(package)
                .join("target")
        });
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

/// The flag on which a bench binary runs as the simulated REPL instead (see [`sim_repl`]).
const SIM_REPL_FLAG: &str = "--sim-repl";

/// Lean workers that are this bench binary re-run as the simulated REPL over `world_file`,
/// answering each request after `delay_ms`: one child process per worker, as real REPLs.
pub fn sim_repl(world_file: &Path, delay_ms: u64, workers: usize) -> LeanConfig {
    let exe = std::env::current_exe().expect("current exe");
    LeanConfig {
        command: vec![
            exe.display().to_string(),
            SIM_REPL_FLAG.into(),
            "--world".into(),
            world_file.display().to_string(),
            "--delay-ms".into(),
            delay_ms.to_string(),
        ],
        workers,
        ..LeanConfig::default()
    }
}

/// When this process was started by [`sim_repl`]: serves the REPL on stdin/stdout until
/// its input ends and returns true (`main` then returns). Call first in `main`.
pub fn served_sim_repl() -> bool {
    let mut args = std::env::args().skip(1).peekable();
    if args.peek().map(String::as_str) != Some(SIM_REPL_FLAG) {
        return false;
    }
    let parsed = sim::repl::ReplArgs::parse(args.skip(1)).expect("sim-repl args");
    if let Err(e) = sim::repl::run(parsed) {
        eprintln!("sim-repl: {e}");
        std::process::exit(1);
    }
    true
}

/// Writes `world` where the simulated REPL workers load it from.
pub fn write_world(path: &Path, world: &sim::world::World) {
    std::fs::write(path, serde_json::to_vec(world).expect("world json")).expect("write world");
}

/// A one-thread runtime for the simulated servers, so they run beside the sweep as separate
/// servers would.
pub fn servers_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Sweeps every theorem of `world` under `config` into `out` with the real policy client and
/// Lean pool (no value model), and reads the run folder back.
pub fn sweep_world(
    runtime: &tokio::runtime::Runtime,
    config: &Config,
    world: &World,
    out: &Path,
) -> run_folder::Summary {
    runtime.block_on(async {
        let setup = RequestSetup::from_config(config).expect("template");
        let policy = build_policy(&config.policy, &setup).expect("policy");
        let pool = LeanPool::new(config.lean.clone());
        run_sweep(
            config,
            world.theorems.iter().map(WorldTheorem::input).collect(),
            out,
            SweepOptions::default(),
            Backends {
                policy,
                scorer: None,
                env: Arc::new(LeanEnv(pool.clone())),
                planner: None,
            },
        )
        .await
        .expect("sweep");
        pool.shutdown().await;
    });
    let summary = run_folder::Summary::from_dir(out).expect("summary");
    assert!(summary.errors.is_empty(), "{:?}", summary.errors);
    summary
}

/// The decode-latency model of `expansion_modes` and `decomposition` at full scale
/// (docs/performance.md section 6): a generate request costs [`GEN_PER_REQUEST`], plus
/// [`GEN_PER_TOKEN`] per decode step (its longest completion) and [`GEN_PER_PROMPT`] per
/// distinct prompt; a Lean request [`LEAN_PER_REQUEST_MS`]. Runs divide every delay by
/// [`SCALE`]; reports scale them back.
pub const SCALE: u32 = 20;
pub const GEN_PER_REQUEST: Duration = Duration::from_millis(100);
pub const GEN_PER_TOKEN: Duration = Duration::from_millis(25);
pub const GEN_PER_PROMPT: Duration = Duration::from_millis(20);
pub const LEAN_PER_REQUEST_MS: u64 = 150;

/// The simulated SGLang over `world` under the decode-latency model, on `runtime`.
pub fn decode_latency_sglang(runtime: &tokio::runtime::Runtime, world: &World) -> SglangHandle {
    runtime
        .block_on(sim::sglang::spawn(
            world.clone(),
            SglangOptions {
                delay_per_request: GEN_PER_REQUEST / SCALE,
                delay_per_token: GEN_PER_TOKEN / SCALE,
                delay_per_prompt: GEN_PER_PROMPT / SCALE,
                ..SglangOptions::default()
            },
        ))
        .expect("sglang")
}

/// A config of those benches: `sampling = "n"`, DeepSeek-Prover-V1.5's tactic and proof
/// templates, `concurrency` theorems at once, each on a simulated REPL over `world_file`
/// answering after the model's Lean delay.
pub fn decode_latency_config(url: &str, world_file: &Path, concurrency: usize) -> Config {
    let mut config = Config::default();
    config.search.timeout_per_theorem = 1e6;
    config.policy.urls = vec![url.to_owned()];
    config.policy.sampling = Sampling::N;
    config.policy.template = "deepseek-tactic-state".into();
    config.policy.proof_template = "deepseek-v1.5-proof".into();
    config.sweep.concurrency = concurrency;
    config.lean = sim_repl(
        world_file,
        LEAN_PER_REQUEST_MS / u64::from(SCALE),
        concurrency,
    );
    config
}

/// The decode-latency model in words, for a bench's first line.
pub fn decode_latency_line() -> String {
    format!(
        "generate {GEN_PER_REQUEST:?} + {GEN_PER_TOKEN:?}/decode step + {GEN_PER_PROMPT:?}/prompt, Lean {LEAN_PER_REQUEST_MS} ms/request (all / {SCALE} here)"
    )
}

/// The decode-latency model as a bench's result records it.
pub fn decode_latency_json() -> serde_json::Value {
    serde_json::json!({
        "scale": SCALE,
        "latency_model_full_scale_ms": {
            "generate_per_request": GEN_PER_REQUEST.as_millis() as u64,
            "generate_per_decode_step": GEN_PER_TOKEN.as_millis() as u64,
            "generate_per_prompt": GEN_PER_PROMPT.as_millis() as u64,
            "lean_per_request": LEAN_PER_REQUEST_MS,
        },
    })
}

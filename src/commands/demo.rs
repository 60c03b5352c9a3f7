//! `stepwise demo`: the whole pipeline on simulated backends, for a machine with no GPU and no
//! Lean. The simulated REPL is this binary's hidden `sim repl` subcommand run as a child
//! process, and the simulated SGLang is a real HTTP server on 127.0.0.1; both follow the
//! scripted world in `configs/demo/`. Everything else is the real sweep.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use formats::theorems::read_theorems;
use sim::sglang::SglangOptions;
use sim::world::World;

const WORLD: &str = include_str!("../../configs/demo/world.json");
const THEOREMS: &str = include_str!("../../configs/demo/theorems.jsonl");
const CONFIG: &str = include_str!("../../configs/demo.toml");

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Where the demo sweep writes; a previous demo there is replaced.
    #[arg(long, default_value = "runs/demo")]
    pub out: PathBuf,
}

pub fn run(args: DemoArgs) -> anyhow::Result<()> {
    println!("stepwise demo: a real sweep against SIMULATED backends");
    println!("  - Lean: a simulated REPL process (`stepwise sim repl`), not Lean;");
    println!("  - policy: a simulated SGLang HTTP server on 127.0.0.1, not a model;");
    println!("  both follow the scripted world in configs/demo/world.json. No proof here is a");
    println!("  real Lean proof; the search, filtering, re-checks and outputs are the real ones.");
    println!();
    println!("The scripted world misbehaves on purpose, to show how the sweep copes:");
    println!("  - `decide` on demo_mod_arith makes the simulated REPL hang. After the tactic");
    println!("    timeout it counts as a Lean timeout, the hung worker is killed and a fresh one");
    println!("    replays the search path: the `WARN ... Lean worker fault; restarting the");
    println!("    worker` line you will see is this, and it is expected.");
    println!(
        "  - `sorry`, `admit` and an unfinished `refine` come back incomplete and never count"
    );
    println!("    as proofs; demo_false_claim is false and must stay unproved.");
    println!();

    clear_previous_demo(&args.out)?;
    let sim_dir = args.out.join("simulation");
    std::fs::create_dir_all(&sim_dir)
        .with_context(|| format!("cannot create {}", sim_dir.display()))?;
    let world_path = sim_dir.join("world.json");
    let theorems_path = sim_dir.join("theorems.jsonl");
    std::fs::write(&world_path, WORLD)?;
    std::fs::write(&theorems_path, THEOREMS)?;
    let world: World = serde_json::from_str(WORLD).context("the bundled demo world")?;
    let theorems = read_theorems(&theorems_path)?;

    let mut config = search::Config::from_toml_str(CONFIG, Path::new("configs/demo.toml"), &[])?;
    let exe = std::env::current_exe().context("cannot find the stepwise binary")?;
    config.lean.command = vec![
        exe.display().to_string(),
        "sim".into(),
        "repl".into(),
        "--world".into(),
        world_path.display().to_string(),
        "--log".into(),
        sim_dir.join("repl-requests.jsonl").display().to_string(),
    ];

    let runtime = tokio::runtime::Runtime::new()?;
    let (_, s) = runtime.block_on(async {
        let sglang = sim::sglang::spawn(world, SglangOptions::default())
            .await
            .context("cannot start the simulated SGLang server")?;
        config.policy.urls = vec![sglang.url()];
        println!("simulated SGLang listening on {}", sglang.url());
        println!(
            "sweeping {} theorems, {} at a time, into {}\n",
            theorems.len(),
            config.sweep.concurrency,
            args.out.display()
        );
        let run = super::sweep::SweepRun {
            theorems_path: &theorems_path,
            theorems_count: theorems.len(),
            shard: None,
            resume: false,
            force: false,
        };
        let report = super::sweep::execute(&config, theorems, &args.out, run).await;
        sglang.shutdown().await?;
        report
    })?;

    println!();
    println!("proved {} of {} theorems (simulated)", s.proved, s.theorems);
    let outputs = [
        ("results", args.out.join("results.jsonl")),
        ("trajectories", args.out.join("trajectories")),
        ("failed tries", args.out.join("failed_attempts")),
        ("summary", args.out.join("summary.json")),
        ("report", args.out.join("report.md")),
        ("plots", args.out.join("report.html")),
        ("REPL requests", sim_dir.join("repl-requests.jsonl")),
    ];
    for (what, path) in outputs {
        println!("  {what:<14}{}", path.display());
    }
    println!();
    println!(
        "Open {} in a browser for the plots (one file, works offline).",
        std::path::absolute(args.out.join("report.html"))?.display()
    );
    println!(
        "While a sweep runs, `stepwise watch {}` follows it from any other shell.",
        args.out.display()
    );
    println!(
        "Next: `stepwise traj stats {}/trajectories`, then the real setup in README.md.",
        args.out.display()
    );
    Ok(())
}

/// The demo always starts fresh, but only ever deletes a folder that an earlier sweep wrote.
fn clear_previous_demo(out: &Path) -> anyhow::Result<()> {
    if !out.exists() {
        return Ok(());
    }
    let is_sweep_dir = out.join("config.json").exists() || out.join("results.jsonl").exists();
    let is_empty = std::fs::read_dir(out)?.next().is_none();
    anyhow::ensure!(
        is_sweep_dir || is_empty,
        "{} exists and is not a previous demo run; pass --out with another folder",
        out.display()
    );
    std::fs::remove_dir_all(out).with_context(|| format!("cannot clear {}", out.display()))
}

//! `stepwise`: the thin command-line edge. Each subcommand parses its flags here and hands
//! off to one function in `commands/`; the work lives in the `search`, `lean-bridge` and
//! `ebm` crates.

mod commands;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "stepwise",
    version,
    about = "A step-level neural theorem prover for Lean 4"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Flags every config-reading command shares.
#[derive(Args, Clone, Debug)]
pub struct ConfigArgs {
    /// TOML config (see configs/); unknown keys are an error.
    #[arg(long, default_value = "configs/default.toml")]
    pub config: PathBuf,
    /// Override one config value, e.g. `--set search.max_nodes=100` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Prove a theorem file with best-first search; results, trajectories and a report go to --out.
    Sweep(commands::sweep::SweepArgs),
    /// Check whole proofs in Lean (the same check a sweep applies before it reports a proof).
    Verify(commands::verify::VerifyArgs),
    /// Rebuild summary.json, report.md and report.html of a sweep directory from its files.
    Summary(commands::summary::SummaryArgs),
    /// Several sweeps side by side (`--html OUT`: their curves on the same axes).
    Compare(commands::summary::CompareArgs),
    /// Follow a sweep from its files: proved, rate, ETA, time split, what is running (q quits).
    Watch(commands::watch::WatchArgs),
    /// Join shard directories (`sweep --shard I/N`) into one run directory.
    Merge(commands::merge::MergeArgs),
    /// Trajectory tools.
    Traj {
        #[command(subcommand)]
        command: commands::traj::TrajCommand,
    },
    /// The energy-based value model: serve, embed, train, eval.
    Ebm {
        #[command(subcommand)]
        command: commands::ebm::EbmCommand,
    },
    /// The value-model loop: sweep, train a head on the --train sweeps, sweep again with it;
    /// per round, what it changed on the --eval theorems.
    Iterate(commands::iterate::IterateArgs),
    /// Check every part a config names and say how to fix what fails.
    Doctor(commands::doctor::DoctorArgs),
    /// Print the exact prompt bytes (and stop strings) the policy server gets for one node.
    Prompt(commands::prompt::PromptArgs),
    /// Run the whole pipeline on simulated Lean and SGLang backends (no GPU, no Lean needed).
    Demo(commands::demo::DemoArgs),
    /// The simulators (test doubles) as processes: `sim repl|sglang|ebm`.
    #[command(hide = true)]
    Sim {
        #[command(subcommand)]
        command: commands::sim::SimCommand,
    },
}

/// The stepwise build that runs (version, and the commit `build.rs` embedded).
pub fn build_info() -> formats::manifest::BuildInfo {
    formats::manifest::BuildInfo {
        version: env!("CARGO_PKG_VERSION").into(),
        commit: env!("STEPWISE_COMMIT").into(),
    }
}

/// The bundled theorem sets (`sha256sum` lines), so a manifest names the one a run used.
pub const BENCHMARK_SUMS: &str = include_str!("../benchmarks/SHA256SUMS");

fn main() -> ExitCode {
    init_tracing();
    match dispatch(Cli::parse().command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", render_error(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line, no backtrace. Library errors often already quote
/// their cause in their own message; a cause is printed only when it adds something.
fn render_error(error: &anyhow::Error) -> String {
    let mut text = error.to_string();
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

fn dispatch(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Sweep(args) => commands::sweep::run(args),
        Command::Verify(args) => commands::verify::run(args),
        Command::Summary(args) => commands::summary::run(args),
        Command::Compare(args) => commands::summary::run_compare(args),
        Command::Watch(args) => commands::watch::run(args),
        Command::Merge(args) => commands::merge::run(args),
        Command::Traj { command } => commands::traj::run(command),
        Command::Ebm { command } => commands::ebm::run(command),
        Command::Iterate(args) => commands::iterate::run(args),
        Command::Doctor(args) => commands::doctor::run(args),
        Command::Prompt(args) => commands::prompt::run(args),
        Command::Demo(args) => commands::demo::run(args),
        Command::Sim { command } => commands::sim::run(command),
    }
}

/// Logs go to stderr, filtered by RUST_LOG (default: info for our crates, warn elsewhere),
/// so stdout stays clean for machine-readable output.
fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new("warn,stepwise=info,search=info,lean_bridge=info,ebm=info")
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

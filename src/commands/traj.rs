use anyhow::Context;
use clap::{Args, Subcommand};
use ebm::traj_stats::TrajStats;

#[derive(Subcommand, Debug)]
pub enum TrajCommand {
    /// Counts, label balance, branching and depth of trajectory files.
    Stats(StatsArgs),
}

#[derive(Args, Debug)]
pub struct StatsArgs {
    /// Trajectory files (`nodes-*.parquet`, `failed-*.parquet`), globs, or trajectory directories.
    #[arg(required = true, value_name = "FILE.parquet")]
    pub files: Vec<String>,
    /// Print JSON instead of the text report.
    #[arg(long)]
    pub json: bool,
}

pub fn run(command: TrajCommand) -> anyhow::Result<()> {
    match command {
        TrajCommand::Stats(args) => stats(args),
    }
}

fn stats(args: StatsArgs) -> anyhow::Result<()> {
    let (traj, failed) = ebm::trajectories::load(&args.files).context("reading trajectories")?;
    let stats = TrajStats::compute(&traj, &failed);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&stats)?);
    } else {
        print!("{}", stats.render());
    }
    Ok(())
}

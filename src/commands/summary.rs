//! `stepwise summary DIR` and `stepwise compare DIR...`: statistics rebuilt from results.jsonl.

use std::path::PathBuf;

use clap::Args;
use search::report::render_compare;
use search::summary::Summary;

#[derive(Args, Debug)]
pub struct SummaryArgs {
    /// A sweep's --out directory.
    pub dir: PathBuf,
    /// Print summary.json instead of the report.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct CompareArgs {
    /// Sweep directories, one row each.
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
}

/// Rebuilds `summary.json` and `report.md` in DIR and prints one of them.
pub fn run(args: SummaryArgs) -> anyhow::Result<()> {
    let summary = Summary::from_dir(&args.dir)?;
    summary.write(&args.dir)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print!("{}", search::report::render(&summary));
    }
    Ok(())
}

pub fn run_compare(args: CompareArgs) -> anyhow::Result<()> {
    let sweeps = args
        .dirs
        .iter()
        .map(|dir| Ok((dir.display().to_string(), Summary::from_dir(dir)?)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    print!("{}", render_compare(&sweeps));
    Ok(())
}

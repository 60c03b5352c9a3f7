//! `stepwise summary DIR` and `stepwise compare DIR...`: statistics rebuilt from results.jsonl.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use formats::manifest::Manifest;
use run_folder::compare::{render_compare, render_setup_comparison};
use run_folder::report_html::{ComparedSweep, Series};
use run_folder::Summary;

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
    /// Also write an HTML page here: the sweeps' curves on the same axes, the table, and the
    /// config values that differ.
    #[arg(long, value_name = "OUT")]
    pub html: Option<PathBuf>,
}

/// Rebuilds `summary.json`, `report.md` and `report.html` in DIR and prints the report or
/// the JSON.
pub fn run(args: SummaryArgs) -> anyhow::Result<()> {
    let summary = run_folder::write_reports(&args.dir)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print!("{}", run_folder::report::render(&summary));
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
    let manifests = args
        .dirs
        .iter()
        .zip(&sweeps)
        .map(|(dir, (name, _))| Ok((name.clone(), formats::manifest::Manifest::read(dir)?)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    print!("{}", render_setup_comparison(&manifests));
    if let Some(out) = &args.html {
        let compared = sweeps
            .into_iter()
            .zip(&args.dirs)
            .map(|((name, summary), dir)| {
                Ok(ComparedSweep {
                    name,
                    summary,
                    series: Series::from_dir(dir)?,
                    manifest: Manifest::read(dir)?,
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let html = run_folder::report_html::render_compare(&compared)
            .map_err(|e| anyhow::anyhow!("plotting the comparison: {e}"))?;
        std::fs::write(out, html).with_context(|| format!("cannot write {}", out.display()))?;
        eprintln!("wrote {}", out.display());
    }
    Ok(())
}

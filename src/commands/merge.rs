//! `stepwise merge OUT DIR...`: shard directories joined into one run directory (see
//! `run_folder::merge`).

use std::path::PathBuf;

use clap::Args;

#[derive(Args, Debug)]
pub struct MergeArgs {
    /// The new run directory (must not exist, or be empty).
    pub out: PathBuf,
    /// Shard directories (`stepwise sweep --shard I/N --out DIR`).
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
    /// The theorems file the shards ran, when the path their manifests name does not exist
    /// here; its sha256 must match theirs.
    #[arg(long)]
    pub theorems: Option<PathBuf>,
}

pub fn run(args: MergeArgs) -> anyhow::Result<()> {
    let report = run_folder::merge::merge(
        &args.out,
        &args.dirs,
        args.theorems.as_deref(),
        &search::manifest::config_defaults(),
    )?;
    let s = &report.summary;
    println!(
        "merged {} shards: proved {} of {} ({:.1}%); {} trajectory files linked; results in {}",
        report.shards,
        s.proved,
        s.theorems,
        s.prove_rate * 100.0,
        report.trajectory_files,
        args.out.display()
    );
    Ok(())
}

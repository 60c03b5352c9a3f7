use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum TrajCommand {
    /// Counts, label balance, branching and depth of trajectory files.
    Stats,
}

pub fn run(_command: TrajCommand) -> anyhow::Result<()> {
    anyhow::bail!("`traj` is not built yet")
}

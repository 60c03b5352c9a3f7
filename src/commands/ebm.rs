use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum EbmCommand {
    /// Serve /encode and /score.
    Serve,
}

pub fn run(_command: EbmCommand) -> anyhow::Result<()> {
    anyhow::bail!("`ebm` is not built yet")
}

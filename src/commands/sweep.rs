use clap::Args;

#[derive(Args, Debug)]
pub struct SweepArgs {}

pub fn run(_args: SweepArgs) -> anyhow::Result<()> {
    anyhow::bail!("`sweep` is not built yet")
}

use clap::Args;

#[derive(Args, Debug)]
pub struct SummaryArgs {}
#[derive(Args, Debug)]
pub struct CompareArgs {}

pub fn run(_args: SummaryArgs) -> anyhow::Result<()> {
    anyhow::bail!("`summary` is not built yet")
}
pub fn run_compare(_args: CompareArgs) -> anyhow::Result<()> {
    anyhow::bail!("`compare` is not built yet")
}

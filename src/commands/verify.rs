use clap::Args;

#[derive(Args, Debug)]
pub struct VerifyArgs {}

pub fn run(_args: VerifyArgs) -> anyhow::Result<()> {
    anyhow::bail!("`verify` is not built yet")
}

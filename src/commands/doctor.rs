use clap::Args;

#[derive(Args, Debug)]
pub struct DoctorArgs {}

pub fn run(_args: DoctorArgs) -> anyhow::Result<()> {
    anyhow::bail!("`doctor` is not built yet")
}

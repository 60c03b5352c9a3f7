//! Hidden subcommands that run the simulated backends as real processes.

use clap::Args;

#[derive(Args, Debug)]
pub struct SimReplArgs {
    /// Flags of the simulated REPL (see `lean_bridge::fake_repl`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

pub fn run_repl(args: SimReplArgs) -> anyhow::Result<()> {
    anyhow::bail!("sim-repl is not built yet ({:?})", args.args)
}

//! Hidden subcommands that run the simulated backends as real processes.

use clap::Args;

#[derive(Args, Debug)]
pub struct SimReplArgs {
    /// Flags of the simulated REPL (see `lean_bridge::fake_repl`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

/// Runs the simulated Lean REPL on stdin/stdout until stdin closes (or a simulated crash).
pub fn run_repl(args: SimReplArgs) -> anyhow::Result<()> {
    let args = lean_bridge::fake_repl::FakeReplArgs::parse(args.args)?;
    lean_bridge::fake_repl::run(args)?;
    Ok(())
}

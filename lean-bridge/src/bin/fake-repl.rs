//! The simulated Lean REPL as its own program (see `lean_bridge::fake_repl`).

use std::process::ExitCode;

use lean_bridge::fake_repl::{run, FakeReplArgs};

fn main() -> ExitCode {
    match FakeReplArgs::parse(std::env::args().skip(1)).and_then(run) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fake-repl: {e}");
            ExitCode::FAILURE
        }
    }
}

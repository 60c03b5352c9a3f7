//! The simulators: TEST DOUBLES, documented as such. Each speaks a real program's protocol over
//! its real transport and answers from one scripted [`world::World`] instead of Lean or a GPU:
//!
//! - [`repl`]: the leanprover-community/repl, as a process on stdin/stdout, with faults on
//!   demand (`stepwise sim repl`);
//! - [`sglang`]: SGLang's `/generate`, OpenAI `/v1/completions`, `/health`, `/get_model_info`
//!   over loopback HTTP (`stepwise sim sglang`);
//! - [`ebm`]: `stepwise ebm serve`'s `/score` and `/health` (`stepwise sim ebm`);
//! - [`signal_world`]: a generated world whose dead ends only their text gives away, for the
//!   value-model loop (`stepwise iterate`).
//!
//! Library crates take this crate only as a dev-dependency; the `stepwise` binary uses it for
//! `stepwise demo` and for the hidden `stepwise sim` entry points that scripts and tests start
//! as processes.

pub mod ebm;
pub mod repl;
pub mod sglang;
pub mod signal_world;
pub mod world;

//! The Lean side of stepwise: the leanprover-community/repl protocol over stdin/stdout,
//! worker processes, a pool with per-header environments, sessions that survive worker
//! faults by replaying tactic paths, and the whole-proof check.
//!
//! The invariant this crate exists to keep: nothing here ever calls a proof complete on
//! `goals == []` alone (see [`TacticOutcome::Complete`] and [`ProofCheck`]).

pub mod config;
pub mod outcome;
pub mod sim_world;
pub mod theorem;

pub use config::LeanConfig;
pub use outcome::{ProofCheck, StateId, TacticOutcome};
pub use theorem::Theorem;

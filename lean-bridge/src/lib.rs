//! The Lean side of stepwise: the leanprover-community/repl protocol over stdin/stdout,
//! worker processes, a pool with per-header environments, sessions that survive worker
//! faults by replaying tactic paths, and the whole-proof check.
//!
//! The invariant this crate exists to keep: nothing here ever calls a proof complete on
//! `goals == []` alone (see [`TacticOutcome::Complete`] and [`ProofCheck`]).

mod cached_worker;
pub mod config;
pub mod error;
mod lease;
pub mod one_tactic;
pub mod outcome;
pub mod pool;
mod proof_check;
pub mod protocol;
pub mod session;
pub mod worker;

pub use config::LeanConfig;
pub use error::LeanError;
pub use outcome::{Hole, ProofCheck, StateId, TacticOutcome};
pub use pool::LeanPool;
pub use session::Session;

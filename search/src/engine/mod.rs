//! The best-first search engine: the node arena, the frontier, the per-theorem search loop and
//! its time accounting.

pub mod decompose;
pub mod frontier;
mod interner;
pub mod node;
mod rows;
pub mod search;
pub mod timing;
pub mod width;

pub use frontier::{priority, Frontier, OrdF64};
pub use node::{Node, NodeId, Tree};
pub use search::{search_theorem, AttemptOutcome, FailedAttempt, SearchOutcome, SearchParams};
pub use timing::{Clock, ManualClock, Phase, PhaseTimer, SystemClock};
pub use width::{in_tail, tail_width, ExpansionWidth};

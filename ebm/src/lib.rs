//! The value side of stepwise: a Llama-family encoder on candle, the energy head, the
//! `/encode` + `/score` server, and the contrastive trainer and evaluator.

pub mod energy_head;
pub mod error;

pub mod embed;
pub mod embedding_cache;
pub mod eval;
pub mod train;
pub mod train_sampler;
pub mod traj_stats;
pub mod trajectories;

pub use energy_head::{save_head, EnergyHead, HeadConfig};
pub use error::{EbmError, Result};

//! The value side of stepwise: a Llama-family encoder on candle, the energy head, the
//! `/encode` + `/score` server, and the contrastive trainer and evaluator.

pub mod batcher;
pub mod cache;
pub mod device;
pub mod energy_head;
pub mod error;
pub mod forward_memory;
pub mod identity;
pub mod llama_config;
pub mod llama_encoder;
pub mod served_head;
pub mod server;
pub mod tokenizer_config;

pub mod embed;
pub mod embedding_cache;
pub mod eval;
pub mod train;
pub mod train_sampler;
pub mod traj_stats;
pub mod trajectories;

pub use device::parse_device;
pub use energy_head::{save_head, EnergyHead, HeadConfig};
pub use error::{EbmError, Result};
pub use llama_encoder::LlamaEncoder;
pub use served_head::ServedHead;
pub use server::{EbmServer, ServerOptions};

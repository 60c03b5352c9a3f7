//! The formats two processes or two crates of stepwise must agree on, and nothing else.
//!
//! The prover (`search`) writes them and the value model (`ebm`) reads them; the two never
//! depend on each other, so every shared row, status and request body lives here:
//! trajectory and failed-attempt rows and their Parquet files ([`trajectory`]),
//! `results.jsonl` lines ([`results`]) and the statistics they carry ([`stats`]), node
//! statuses ([`NodeStatus`]), the goals-text layout ([`join_goals`]), and the EBM server's
//! `/score`, `/encode` and `/health` bodies ([`ebm_api`], [`identity`]), the run manifest
//! ([`manifest`]), `stepwise iterate`'s record ([`iterate`]), and a model directory's `tokenizer_config.json` ([`tokenizer_config`]).

pub mod append;
mod columns;
pub mod ebm_api;
mod goals;
pub mod identity;
pub mod iterate;
pub mod manifest;
mod node_status;
pub mod progress;
pub mod results;
pub mod runs;
pub mod search_mode;
pub mod stats;
pub mod theorems;
pub mod tokenizer_config;
pub mod trajectory;
pub mod utilisation;

pub use goals::join_goals;
pub use node_status::NodeStatus;

//! The search side of stepwise: the best-first engine and the three narrow traits it talks
//! through ([`policy::Policy`], [`value::ValueScorer`], [`env::ProofEnv`]), the concrete
//! policy and value clients, Lean access, the sweep loop and what a running sweep writes
//! (results, trajectories, progress, the manifest). Reading a run folder back is the `run-folder`
//! crate's.

pub mod banned;
pub mod bos;
pub mod candidates;
pub mod config;
pub mod engine;
pub mod env;
pub mod http_retry;
pub mod lean_env;
pub mod manifest;
pub mod planner;
pub mod policy;
pub mod progress;
pub mod request_setup;
pub mod sweep;
pub mod templates;
pub mod value;

pub use config::{Config, ConfigError};

//! The search side of stepwise: the best-first engine and the three narrow traits it talks
//! through ([`policy::Policy`], [`value::ValueScorer`], [`env::ProofEnv`]), the concrete
//! policy and value clients, the sweep runner, and the results/trajectory writers.

pub mod banned;
pub mod candidates;
pub mod config;
pub mod engine;
pub mod env;
pub mod http_retry;
pub mod lean_env;
pub mod manifest;
pub mod merge;
pub mod policy;
pub mod progress;
pub mod report;
pub mod report_html;
pub mod request_setup;
pub mod summary;
pub mod sweep;
pub mod templates;
pub mod theorems;
pub mod value;
pub mod watch;

pub use config::{Config, ConfigError};

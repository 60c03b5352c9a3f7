//! `search`'s integration tests, one binary: the engine over in-process doubles
//! (`engine_support`), the policy and EBM clients over loopback HTTP, sweeps, and tactic
//! extraction from the simulated SGLang's stopped samples.

mod configs_load;
mod engine_decompose;
mod engine_failed_rows;
mod engine_proof_mode;
mod engine_search;
mod engine_speculate;
mod engine_support;
mod engine_sweep;
mod engine_timing;
mod policy_ebm_client;
mod policy_http;
mod policy_real_servers;
mod policy_utilisation;
mod sweep_accounting;
mod sweep_tail;
mod tactic_layouts;

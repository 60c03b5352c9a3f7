//! The root crate's integration tests, one binary (as ripgrep does: one link of candle, arrow
//! and tokenizers instead of one per file): end-to-end runs of `stepwise` over real processes
//! and loopback HTTP, one module per subject; `support` is their shared setup.

mod architecture;
mod bos_check_e2e;
mod decompose_e2e;
mod demo_cli;
mod design_doc;
mod doctor_cli;
mod iterate_e2e;
mod lean_bridge_faults;
mod lean_bridge_real_repl;
mod lean_bridge_session;
mod lean_bridge_warm_up;
mod manifest_merge_e2e;
mod planner_e2e;
mod prompt_cli;
mod proof_mode_e2e;
mod repl_contract;
mod request_setup_e2e;
mod sim_repl_protocol;
mod support;
mod sweep_e2e;
mod sweep_real_repl;
mod sweep_warm_up;
mod verify_cli;

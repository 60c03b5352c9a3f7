//! `ebm`'s integration tests, one binary (`attention_memory` has its own: see Cargo.toml);
//! `traj_fixture` writes the trajectories they train and evaluate on.

mod batcher;
mod encoder_parity;
mod head;
mod head_swap;
mod server;
mod train_cache;
mod train_embed;
mod train_sampler;
mod train_serve;
mod train_shuffle;
mod train_signal;
mod train_terminal;
mod train_warnings;
mod traj_fixture;
mod traj_pandas;
mod traj_stats;
mod traj_subgoals;

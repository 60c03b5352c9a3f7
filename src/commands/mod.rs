//! One module per subcommand: flag structs and the function that runs them.

pub mod demo;
pub mod doctor;
pub mod ebm;
mod ebm_server_encoder;
pub mod iterate;
pub mod merge;
pub mod prompt;
pub mod sim;
pub mod summary;
pub mod sweep;
pub mod traj;
pub mod verify;
pub mod watch;

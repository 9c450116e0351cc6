//! hawkeye in one crate: the `hawkeye` command line, and [`embed`], which
//! starts the server and the agent inside an application's own tokio runtime.

pub mod alerts;
pub mod backtest;
pub mod check;
pub mod cli;
pub mod demo;
pub mod embed;
pub mod monitor_test;
pub mod query_args;
pub mod range;
pub mod silence;
pub mod slo;
pub mod table;
/// `.env` loading, shared by every hawkeye binary.
pub use hawkeye_env as env_files;

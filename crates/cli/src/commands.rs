//! The subcommands, one module each: what each does with its settings and how it reports.

mod bench;
mod completions;
mod config_show;
mod execute;
mod man;
mod merge;
mod run;
mod sim;
mod transfer;

pub use bench::bench;
pub use completions::completions;
pub use config_show::config_show;
pub use man::man;
pub use merge::merge;
pub use run::run;
pub use sim::sim;
pub use transfer::{get, put};

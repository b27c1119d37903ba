//! Shard threads: started all-or-nothing by one launcher for a run's shards and a connected
//! fleet's, they take hosts (a run's shards the batch's next host when they have room; a
//! connected fleet's their own by index), keep each shard's share of the fanout in flight, and
//! send events back through a crossbeam channel.
//!
//! - `config`: shard count, fanout shares, which shard owns a host;
//! - `launcher`: spawn, pin, build the runtime, ready/go;
//! - `shard`: one shard's part of a run ([`RunParts`] is what its shards share);
//! - `run`: a run's own shards ([`start`]) and the [`Executor`] handle;
//! - `pool`: a connected fleet's shards ([`Pool`]).

mod config;
mod launcher;
mod pool;
mod run;
mod shard;

pub use self::config::{ShardConfig, shard_of};
pub use self::pool::Pool;
pub use self::run::{Executor, start};
pub use self::shard::RunParts;
pub use crate::sink::{EventSink, Journal, OUTPUT_BUDGET_BYTES, OutputBudget};
pub use tokio_util::sync::CancellationToken as CancelToken;

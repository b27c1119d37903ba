//! What to run ([`Job`]), how to run it ([`RunConfig`]), how to connect (key exchange, cipher,
//! host-key checking, channel sizes), and the TOML file that gives defaults for all of them
//! ([`FileConfig`]); [`Layers`] puts a program's command-line flags over that file over
//! fleetsh's defaults.

mod connection;
mod file;
mod job;
mod keys;
mod layers;
mod read;
mod run;
mod validate;

pub use connection::{
    Cipher, DEFAULT_KEEPALIVE_COUNT, DEFAULT_PACKET_SIZE, DEFAULT_WINDOW_SIZE, HostKeyCheck, Kex,
    MAX_PACKET_SIZE, MIN_PACKET_SIZE, aes_gcm_in_hardware, channel_sizes,
};
pub use file::{FileConfig, config_dir, default_config_file};
pub use job::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_OUTPUT_CAP, DEFAULT_RETRY_DELAY, Job, MAX_BACKOFF_FACTOR,
    StdinData, Sudo, retry_backoff,
};
pub use layers::{ConnectionSettings, Flags, Layer, Layered, Layers};
pub use run::{Amount, DEFAULT_FANOUT, MAX_RATE, MIN_RATE, RunConfig, short_number};

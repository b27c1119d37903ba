//! The engine and its builder.
//!
//! - [`builder`]: [`EngineBuilder`], every option and its default;
//! - [`build`]: turning those options into an [`Engine`] (client configuration, keys, agent,
//!   known_hosts, the ssh_config resolver), checked once;
//! - [`run`]: [`Engine`], which starts runs, copies and connected fleets;
//! - [`kex_guesses`]: [`KexGuesses`], the counts of key exchange guesses.

mod builder;

// Declared after `builder`: rustdoc lists `EngineBuilder`'s impl blocks in module order, and
// `build` reads best after the options.
mod build;
mod kex_guesses;
mod run;

pub use builder::EngineBuilder;
pub use kex_guesses::KexGuesses;
pub use run::Engine;

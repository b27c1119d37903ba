//! The scenarios, one module each: each builds its measurement specs, has the harness measure
//! them ([`crate::bench::Bench`]) and prints its table.

pub mod echo;
pub mod floor;
pub mod idle;
pub mod journal;
pub mod kex;
pub mod peers;
pub mod python;
pub mod read26k;
pub mod rtt;
pub mod scaling;
pub mod split;
pub mod sweep;
pub mod transfer;

//! Host targets, pdsh/clush host ranges, hosts files and the final host list.
//!
//! - [`HostTarget`] is one `[user@]host[:port]`, with IPv6 literals written `[::1]:2222`
//!   (or bare `::1` when there is no port).
//! - [`expand`] turns a range spec such as `root@web[01-12,20].dc[1-2]:2222` into host strings.
//!   The number of hosts is computed with checked arithmetic *before* anything is allocated, so a
//!   spec like `h[1-99999999][1-99999999]` fails at once with
//!   [`Error::TooManyHosts`](crate::Error::TooManyHosts).
//! - [`parse_hosts_file_text`] and [`read_hosts_file`] read one target or spec per line.
//! - [`HostList`] combines includes (specs, files, targets) and exclusions, removes duplicates
//!   (keeping the first occurrence) and enforces a size limit.
//!
//! ```
//! use fleetsh_core::hosts::HostList;
//!
//! let mut list = HostList::new().limit(10_000);
//! list.include_spec("web[01-04],root@db1:2222")?
//!     .exclude_spec("web03")?;
//! let hosts = list.build()?;
//! let names: Vec<String> = hosts.iter().map(|t| t.to_string()).collect();
//! assert_eq!(names, ["web01", "web02", "web04", "root@db1:2222"]);
//! # Ok::<(), fleetsh_core::Error>(())
//! ```

mod expand;
mod hostfile;
mod list;
mod target;

pub use expand::expand;
pub(crate) use expand::expand_targets;
pub use hostfile::{parse_hosts_file_text, read_hosts_file};
pub use list::{DEFAULT_MAX_HOSTS, HostList};
pub use target::HostTarget;

#[cfg(test)]
mod assertions;

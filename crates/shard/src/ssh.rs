//! The SSH client: everything between a host's address and an authenticated session.
//!
//! Dependencies point one way, from the top of this list to the bottom:
//! - `connect`: the way a host's configuration asks for (ProxyCommand, bastions, TCP), then a
//!   session;
//! - [`jump`]: bastion connections and the tunnels through them (a bastion is itself reached
//!   with `dial` and `session`);
//! - `session`: the handshake with the host-key check, then authentication;
//! - [`auth`]: the authentication flow and its material (key files, certificates, agent);
//! - `dial`: name lookup (`resolve`), TCP and its read buffer (`readbuf`); `proxy`: a
//!   `ProxyCommand`'s process as the byte stream;
//! - `handler`: russh's client handler (host-key verdicts, channels the server opens);
//! - [`settings`], [`client_config`], [`known_hosts`]: what the engine and ssh_config set.

pub mod auth;
pub mod client_config;
pub(crate) mod connect;
pub(crate) mod dial;
pub(crate) mod handler;
pub mod jump;
pub mod known_hosts;
pub(crate) mod proxy;
mod readbuf;
pub(crate) mod resolve;
pub(crate) mod session;
pub mod settings;

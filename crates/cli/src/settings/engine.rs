//! Settings onto the engine: the connection settings (flags over the fleetsh config file) and
//! the flags that only the engine takes (agent, secrets from the environment, the passphrase
//! prompt, the bastion fanout) on an [`EngineBuilder`].

use std::io::{self, IsTerminal};
use std::path::PathBuf;

use anyhow::Result;
use fleetsh::config::ConnectionSettings;
use fleetsh::{Engine, EngineBuilder, RunConfig, Secret};
use fleetsh_sim::SimFleet;

use crate::args::{CommonArgs, ConnArgs};
use crate::error::usage;

/// The engine of `run`, `put`, `get` and `bench`: `run_cfg`, the connection settings `conn`
/// and the shared flags `a`; `fleet` is the embedded simulated fleet, if any.
pub fn build(
    a: &CommonArgs,
    conn: &ConnectionSettings,
    run_cfg: RunConfig,
    fleet: Option<&SimFleet>,
) -> Result<Engine> {
    let mut b = Engine::builder().run_config(run_cfg);
    b = connection(b, conn, &a.conn, fleet)?;
    if a.no_agent || fleet.is_some() {
        b = b.no_agent();
    }
    if let Ok(pw) = std::env::var("FLEETSH_PASSWORD")
        && !pw.is_empty()
    {
        b = b.password(Secret::new(pw));
    }
    if let Ok(pp) = std::env::var("FLEETSH_PASSPHRASE")
        && !pp.is_empty()
    {
        b = b.passphrase(Secret::new(pp));
    }
    if let Some(k) = conn.kex {
        b = b.kex(k);
    }
    if let Some(c) = conn.cipher {
        b = b.cipher(c);
    }
    if !conn.kex_guess {
        b = b.kex_guess(false);
    }
    b = file_connection_options(b, conn);
    if a.forward_agent {
        b = b.forward_agent(true);
    }
    // An encrypted key FLEETSH_PASSPHRASE does not open: ask on the terminal, once per key.
    if io::stdin().is_terminal() {
        b = b.passphrase_prompt(fleetsh::PassphrasePrompt::new(|path| {
            rpassword::prompt_password(format!("Enter passphrase for key {}: ", path.display()))
                .ok()
                .filter(|p| !p.is_empty())
                .map(Secret::new)
        }));
    }
    if let Some(n) = a.jump_fanout {
        b = b.jump_fanout(usize::try_from(n).unwrap_or(usize::MAX));
    }
    b.build().map_err(usage)
}

/// The connection settings `s` (flags over the fleetsh config file) on `b`: they win over
/// ssh_config (`-F`, else `~/.ssh/config` if it exists, unless `--no-ssh-config`, from `c`).
/// `sim` wires in an embedded fleet's key and known_hosts.
pub fn connection(
    mut b: EngineBuilder,
    s: &ConnectionSettings,
    c: &ConnArgs,
    sim: Option<&SimFleet>,
) -> Result<EngineBuilder> {
    if let Some(u) = &s.user {
        b = b.user(&u.value);
    }
    if let Some(p) = &s.port {
        b = b.port(p.value);
    }
    if let Some(t) = &s.connect_timeout {
        b = b.connect_timeout(t.value);
    }
    let mut identities: Vec<PathBuf> = s
        .identity_files
        .as_ref()
        .map(|i| i.value.clone())
        .unwrap_or_default();
    let mut known_hosts = s.known_hosts.as_ref().map(|k| k.value.clone());
    if let Some(f) = sim {
        if identities.is_empty() {
            identities.push(f.client_key_file());
        }
        known_hosts.get_or_insert_with(|| f.known_hosts_file());
    }
    for i in identities {
        b = b.identity_file(expand_tilde(i));
    }
    if let Some(k) = known_hosts {
        b = b.known_hosts(expand_tilde(k));
    }
    if let Some(check) = &s.host_key_check {
        b = b.host_key_check(check.value);
    }
    for cert in &s.certificate_files {
        b = b.certificate_file(expand_tilde(cert.clone()));
    }
    if let Some(spec) = &s.jump {
        b = b
            .jump_spec(spec)
            .map_err(|e| usage(anyhow::anyhow!("-J {spec:?}: {e}")))?;
    }
    if !c.no_ssh_config {
        match &c.ssh_config {
            Some(p) => {
                let p = expand_tilde(p.clone());
                if !p.is_file() {
                    return Err(usage(anyhow::anyhow!(
                        "-F: {} is not a readable file",
                        p.display()
                    )));
                }
                b = b.ssh_config_file(p);
            }
            None => {
                if let Some(home) = std::env::var_os("HOME") {
                    let p = PathBuf::from(home).join(".ssh").join("config");
                    if p.is_file() {
                        b = b.ssh_config_file(p);
                    }
                }
            }
        }
    }
    Ok(b)
}

/// The config file's connection options that have no flag: ciphers, keepalive, inactivity
/// timeout, channel window and packet size (checked when the file was read; the engine
/// checks them again at `build`).
pub fn file_connection_options(mut b: EngineBuilder, s: &ConnectionSettings) -> EngineBuilder {
    if let Some(c) = &s.ciphers {
        b = b.ciphers(c.iter().cloned());
    }
    if let Some(v) = s.keepalive_interval {
        b = b.keepalive_interval(v);
    }
    if let Some(v) = s.keepalive_count {
        b = b.keepalive_count(v);
    }
    if let Some(v) = s.inactivity_timeout {
        b = b.inactivity_timeout(v);
    }
    if let Some(v) = s.window_size {
        b = b.window_size(v);
    }
    if let Some(v) = s.max_packet_size {
        b = b.max_packet_size(v);
    }
    b
}

/// `p` with a leading `~` replaced by `$HOME` (when it is set).
pub fn expand_tilde(p: PathBuf) -> PathBuf {
    if let Ok(rest) = p.strip_prefix("~")
        && let Some(home) = std::env::var_os("HOME")
    {
        return PathBuf::from(home).join(rest);
    }
    p
}

//! The state files: `hosts`, `known_hosts`, `id_ed25519`, `id_ed25519.pub`, and
//! `known_hosts_ca` with a host CA.
//!
//! Each file is written to a temporary name beside it and renamed into place, so a reader
//! never sees half a file and the private key never exists with loose permissions.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use russh::keys::ssh_key::LineEnding;
use russh::keys::{PrivateKey, PublicKey};

use crate::{SimError, SimHost};

/// File names inside the state directory.
pub(crate) const HOSTS: &str = "hosts";
pub(crate) const KNOWN_HOSTS: &str = "known_hosts";
/// The `@cert-authority` line of the host CA (only with `SimConfig::host_ca`).
pub(crate) const KNOWN_HOSTS_CA: &str = "known_hosts_ca";
pub(crate) const CLIENT_KEY: &str = "id_ed25519";
pub(crate) const CLIENT_KEY_PUB: &str = "id_ed25519.pub";
/// Where a test puts a certificate of the client key (never written by the fleet itself).
pub(crate) const CLIENT_CERT: &str = "id_ed25519-cert.pub";
/// The directory of the hosts' SFTP roots (`root/sim00001`, ...), created lazily.
pub(crate) const ROOTS: &str = "root";

/// The `known_hosts` host pattern for an address: `[ip]:port`, or bare `ip` on port 22.
pub(crate) fn known_hosts_pattern(host: &SimHost) -> String {
    if host.addr.port() == 22 {
        host.addr.ip().to_string()
    } else {
        format!("[{}]:{}", host.addr.ip(), host.addr.port())
    }
}

/// Writes every state file into `dir` (created if missing); without a host CA, removes a
/// `known_hosts_ca` left by an earlier fleet, so no client trusts a stale CA.
pub(crate) fn write_all(
    dir: &Path,
    hosts: &[SimHost],
    host_keys: &[PublicKey],
    client_key: &PrivateKey,
    host_ca: Option<&PublicKey>,
) -> Result<(), SimError> {
    fs::create_dir_all(dir).map_err(|source| SimError::StateWrite {
        path: dir.to_path_buf(),
        source,
    })?;

    write_file(&dir.join(HOSTS), false, |w| {
        for host in hosts {
            writeln!(w, "{}", host.addr)?;
        }
        Ok(())
    })?;

    let mut lines = Vec::with_capacity(hosts.len());
    for (host, key) in hosts.iter().zip(host_keys) {
        // Key type and base64 only: no comment.
        let key = PublicKey::new(key.key_data().clone(), "")
            .to_openssh()
            .map_err(|source| SimError::Key { source })?;
        lines.push((known_hosts_pattern(host), key));
    }
    write_file(&dir.join(KNOWN_HOSTS), false, |w| {
        for (pattern, key) in &lines {
            writeln!(w, "{pattern} {key}")?;
        }
        Ok(())
    })?;

    let ca_path = dir.join(KNOWN_HOSTS_CA);
    match host_ca {
        Some(ca) => {
            let ca = PublicKey::new(ca.key_data().clone(), "")
                .to_openssh()
                .map_err(|source| SimError::Key { source })?;
            write_text(&ca_path, &format!("@cert-authority * {ca}\n"))?;
        }
        None => match fs::remove_file(&ca_path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(SimError::StateWrite {
                    path: ca_path,
                    source: e,
                });
            }
            _ => {}
        },
    }

    let private = client_key
        .to_openssh(LineEnding::LF)
        .map_err(|source| SimError::Key { source })?;
    write_file(&dir.join(CLIENT_KEY), true, |w| {
        w.write_all(private.as_bytes())
    })?;
    let public = client_key
        .public_key()
        .to_openssh()
        .map_err(|source| SimError::Key { source })?;
    write_file(&dir.join(CLIENT_KEY_PUB), false, |w| {
        writeln!(w, "{public}")
    })?;
    Ok(())
}

/// Writes a small public text file (mode 0644) atomically.
pub(crate) fn write_text(path: &Path, text: &str) -> Result<(), SimError> {
    write_file(path, false, |w| w.write_all(text.as_bytes()))
}

/// Writes `path` through a buffered writer into a temporary file, then renames it into place.
fn write_file(
    path: &Path,
    private: bool,
    fill: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> Result<(), SimError> {
    let err = |source| SimError::StateWrite {
        path: path.to_path_buf(),
        source,
    };
    let tmp = tmp_path(path);
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if private { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = private;
    let written = (|| {
        // A leftover temporary file from a crash may have other permissions: start afresh.
        let _ = fs::remove_file(&tmp);
        let mut w = BufWriter::with_capacity(64 * 1024, options.open(&tmp)?);
        fill(&mut w)?;
        w.flush()?;
        drop(w);
        fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written.map_err(err)
}

/// The temporary name `path` is written under before the rename.
fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp{}", std::process::id()));
    path.with_file_name(name)
}

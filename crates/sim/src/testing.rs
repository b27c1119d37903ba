//! Helpers for tests of clients against the sim: a deterministic CA, OpenSSH user
//! certificates for the fleet's client key, and host certificates for the fleet's hosts
//! (see [`SimConfig::host_ca`](crate::SimConfig::host_ca)).
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use fleetsh_sim::{SimConfig, SimFleet, testing};
//!
//! let dir = tempfile::tempdir()?;
//! let ca = testing::ca_key(7);
//! let fleet = SimFleet::start(SimConfig {
//!     port: 0,
//!     state_dir: dir.path().to_path_buf(),
//!     user_ca: Some(ca.public_key().clone()),
//!     ..SimConfig::default()
//! })?;
//! let now = SystemTime::now();
//! let cert = testing::make_user_cert(
//!     &ca,
//!     fleet.client_public_key(),
//!     &["deploy"],
//!     now - Duration::from_secs(60)..now + Duration::from_secs(3600),
//! )?;
//! // `id_ed25519-cert.pub` beside `id_ed25519`, where OpenSSH clients look for it.
//! let path = fleet.client_cert_file();
//! testing::write_cert(&cert, &path)?;
//! assert!(std::fs::read_to_string(&path)?.starts_with("ssh-ed25519-cert-v01@openssh.com "));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::ops::Range;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use russh::keys::HashAlg;
use russh::keys::ssh_key::certificate::{Builder, CertType};
use russh::keys::{Certificate, PrivateKey, PublicKey};

use crate::{SimError, keys};

/// A deterministic Ed25519 CA key for `seed` (comment `fleetsh-sim-ca`), for
/// [`SimConfig::user_ca`](crate::SimConfig::user_ca) and [`make_user_cert`], or
/// [`SimConfig::host_ca`](crate::SimConfig::host_ca) and [`make_host_cert`]. Different
/// seeds give different CAs, none of them equal to a host or client key of any fleet.
pub fn ca_key(seed: u64) -> PrivateKey {
    keys::ca_key(seed)
}

/// An OpenSSH user certificate for `user_key`, signed by `ca`.
///
/// - `principals`: the user names it is valid for; empty means any user (as in
///   OpenSSH).
/// - `valid`: its validity period (`valid_after..valid_before`, second precision); a
///   range in the past makes an expired certificate, one in the future a not yet valid
///   one.
///
/// The certificate has key id `fleetsh-sim`, serial 1, the usual `permit-*` extensions
/// (`permit-pty`, `permit-agent-forwarding`, ...) and no critical options. The nonce is
/// derived from the inputs, so the same inputs give the same certificate.
///
/// # Errors
///
/// [`SimError::Cert`] if the period ends before it starts or the CA cannot sign.
pub fn make_user_cert(
    ca: &PrivateKey,
    user_key: &PublicKey,
    principals: &[&str],
    valid: Range<SystemTime>,
) -> Result<Certificate, SimError> {
    sign_cert(
        ca,
        user_key,
        CertType::User,
        "fleetsh-sim",
        principals,
        valid,
        &[
            "permit-X11-forwarding",
            "permit-agent-forwarding",
            "permit-port-forwarding",
            "permit-pty",
            "permit-user-rc",
        ],
    )
}

/// An OpenSSH host certificate for `host_key`, signed by `ca`: what every host presents
/// with [`SimConfig::host_ca`](crate::SimConfig::host_ca), made by hand so a test can
/// give one host a bad one through
/// [`SimConfig::host_cert_override`](crate::SimConfig::host_cert_override) (expired, for
/// other principals, signed by another CA, or a user certificate).
///
/// - `host_key`: the key it certifies, normally
///   [`SimFleet::host_public_key`](crate::SimFleet::host_public_key).
/// - `principals`: the host names it is valid for (the fleet's own certificates name the
///   host's IP address, `127.1.0.1`, and its name, `sim00001`); empty means any host.
/// - `valid`: its validity period (`valid_after..valid_before`, second precision).
///
/// The certificate has type host, key id `fleetsh-sim-host`, serial 1, no extensions and
/// no critical options (as OpenSSH host certificates). The nonce is derived from the
/// inputs, so the same inputs give the same certificate.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use fleetsh_sim::{SimConfig, SimFleet, testing};
///
/// let dir = tempfile::tempdir()?;
/// let ca = testing::ca_key(1);
/// let host_key = testing::host_public_key(0, 1); // seed 0, host 1 (`sim00002`)
/// let now = SystemTime::now();
/// // Expired an hour ago.
/// let expired = testing::make_host_cert(
///     &ca,
///     &host_key,
///     &["127.1.0.2", "sim00002"],
///     now - Duration::from_secs(7200)..now - Duration::from_secs(3600),
/// )?;
/// let fleet = SimFleet::start(SimConfig {
///     count: 2,
///     port: 0,
///     state_dir: dir.path().to_path_buf(),
///     host_ca: Some(ca),
///     host_cert_override: Some((1, expired)),
///     ..SimConfig::default()
/// })?;
/// let trust = std::fs::read_to_string(fleet.known_hosts_ca_file())?;
/// assert!(trust.starts_with("@cert-authority * ssh-ed25519 "));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
///
/// [`SimError::Cert`] if the period ends before it starts or the CA cannot sign.
pub fn make_host_cert(
    ca: &PrivateKey,
    host_key: &PublicKey,
    principals: &[&str],
    valid: Range<SystemTime>,
) -> Result<Certificate, SimError> {
    sign_cert(
        ca,
        host_key,
        CertType::Host,
        HOST_CERT_KEY_ID,
        principals,
        valid,
        &[],
    )
}

/// The public host key of host `index` in a fleet started with `seed`, as
/// [`SimFleet::host_public_key`](crate::SimFleet::host_public_key) gives it once the fleet
/// runs: for certificates made before the fleet starts.
pub fn host_public_key(seed: u64, index: usize) -> PublicKey {
    keys::host_key(seed, index).public_key().clone()
}

/// The key id of host certificates.
pub(crate) const HOST_CERT_KEY_ID: &str = "fleetsh-sim-host";

/// Builds and signs a certificate (see [`make_user_cert`] and [`make_host_cert`]).
pub(crate) fn sign_cert(
    ca: &PrivateKey,
    key: &PublicKey,
    cert_type: CertType,
    key_id: &str,
    principals: &[&str],
    valid: Range<SystemTime>,
    extensions: &[&str],
) -> Result<Certificate, SimError> {
    let secs = |t: SystemTime| t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (after, before) = (secs(valid.start), secs(valid.end));
    let kind = match cert_type {
        CertType::User => 0,
        CertType::Host => 1,
    };
    let nonce: Vec<u8> = [after, before, keys::mix(principals.len() as u64) ^ kind]
        .iter()
        .flat_map(|n| keys::mix(*n).to_le_bytes())
        .chain(key.fingerprint(HashAlg::Sha256).as_bytes().iter().copied())
        .collect();
    let cert_err = |source| SimError::Cert { source };
    let mut builder =
        Builder::new(nonce, key.key_data().clone(), after, before).map_err(cert_err)?;
    builder
        .serial(1)
        .and_then(|b| b.cert_type(cert_type))
        .and_then(|b| b.key_id(key_id))
        .map_err(cert_err)?;
    if principals.is_empty() {
        builder.all_principals_valid().map_err(cert_err)?;
    }
    for principal in principals {
        builder.valid_principal(*principal).map_err(cert_err)?;
    }
    for extension in extensions {
        builder.extension(*extension, "").map_err(cert_err)?;
    }
    builder.sign(ca).map_err(cert_err)
}

/// Writes `cert` to `path` in OpenSSH's one-line format (`ssh-ed25519-cert-v01@openssh.com
/// AAAA... comment`), mode 0644, replacing the file atomically.
///
/// # Errors
///
/// [`SimError::Cert`] if it cannot be encoded, [`SimError::StateWrite`] if it cannot be
/// written.
pub fn write_cert(cert: &Certificate, path: &Path) -> Result<(), SimError> {
    let line = cert
        .to_openssh()
        .map_err(|source| SimError::Cert { source })?;
    crate::state::write_text(path, &format!("{line}\n"))
}

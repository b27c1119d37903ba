//! How a connection is made: the key exchange and cipher preferences ([`Kex`], [`Cipher`]),
//! host-key checking ([`HostKeyCheck`]), the SSH channel's window and packet sizes, and the
//! keepalive default.

use std::str::FromStr;

use serde::Deserialize;

use crate::Error;

/// Which key exchange a connection prefers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kex {
    /// The post-quantum hybrid `mlkem768x25519-sha256` first (as OpenSSH 9.9+), then
    /// `curve25519-sha256`, then the Diffie-Hellman groups.
    #[default]
    Default,
    /// `curve25519-sha256` first: less client CPU per handshake (see docs/benchmarks.md, "Key
    /// exchange: ML-KEM hybrid and curve25519"), without the post-quantum protection. For very
    /// large fleets.
    Curve25519,
}

impl Kex {
    /// The name as written on the command line and in config files.
    pub fn as_str(self) -> &'static str {
        match self {
            Kex::Default => "default",
            Kex::Curve25519 => "curve25519",
        }
    }
}

impl FromStr for Kex {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "default" => Ok(Kex::Default),
            "curve25519" => Ok(Kex::Curve25519),
            other => Err(Error::InvalidSetting {
                setting: "kex",
                reason: format!("{other:?} is not one of default, curve25519"),
            }),
        }
    }
}

/// Which session cipher a connection prefers. Every choice offers the same set (russh's safe
/// list: AES-256-GCM, ChaCha20-Poly1305, AES-CTR with SHA-2 MACs); only the first differs, and
/// the server takes the first of ours it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cipher {
    /// `aes256-gcm@openssh.com` first when this CPU has AES and carry-less multiply
    /// instructions (AES-NI and PCLMULQDQ, or ARMv8's AES and PMULL), else
    /// `chacha20-poly1305@openssh.com` first.
    #[default]
    Auto,
    /// `aes256-gcm@openssh.com` first.
    AesGcm,
    /// `chacha20-poly1305@openssh.com` first (OpenSSH's order): for servers without AES
    /// instructions (small ARM boards), which decrypt AES-GCM far slower than ChaCha20.
    Chacha20,
}

impl Cipher {
    /// What this preference means on this machine: [`Cipher::Auto`] becomes
    /// [`Cipher::AesGcm`] when [`aes_gcm_in_hardware`], else [`Cipher::Chacha20`].
    pub fn resolve(self) -> Cipher {
        match self {
            Cipher::Auto if aes_gcm_in_hardware() => Cipher::AesGcm,
            Cipher::Auto => Cipher::Chacha20,
            other => other,
        }
    }

    /// The name as written on the command line and in config files.
    pub fn as_str(self) -> &'static str {
        match self {
            Cipher::Auto => "auto",
            Cipher::AesGcm => "aes-gcm",
            Cipher::Chacha20 => "chacha20",
        }
    }
}

impl FromStr for Cipher {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "auto" => Ok(Cipher::Auto),
            "aes-gcm" => Ok(Cipher::AesGcm),
            "chacha20" => Ok(Cipher::Chacha20),
            other => Err(Error::InvalidSetting {
                setting: "cipher",
                reason: format!("{other:?} is not one of auto, aes-gcm, chacha20"),
            }),
        }
    }
}

/// Whether this CPU has the instructions AES-GCM runs fast and in constant time on: AES and
/// carry-less multiply (x86-64: AES-NI and PCLMULQDQ; AArch64: AES and PMULL).
pub fn aes_gcm_in_hardware() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("aes")
            && std::arch::is_x86_feature_detected!("pclmulqdq")
    }
    #[cfg(target_arch = "aarch64")]
    {
        std::arch::is_aarch64_feature_detected!("aes")
            && std::arch::is_aarch64_feature_detected!("pmull")
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        false
    }
}

/// How the server's host key is checked against known_hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HostKeyCheck {
    /// Unknown or changed keys fail the host with `hostkey` (OpenSSH `StrictHostKeyChecking yes`).
    #[default]
    Strict,
    /// Unknown keys are accepted and appended to known_hosts; changed keys still fail.
    AcceptNew,
    /// No check at all (insecure; warned about).
    Off,
}

impl HostKeyCheck {
    /// The name as written on the command line and in config files.
    pub fn as_str(self) -> &'static str {
        match self {
            HostKeyCheck::Strict => "strict",
            HostKeyCheck::AcceptNew => "accept-new",
            HostKeyCheck::Off => "off",
        }
    }
}

impl FromStr for HostKeyCheck {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "strict" | "yes" => Ok(HostKeyCheck::Strict),
            "accept-new" => Ok(HostKeyCheck::AcceptNew),
            "off" | "no" => Ok(HostKeyCheck::Off),
            other => Err(Error::InvalidSetting {
                setting: "host_key_check",
                reason: format!("{other:?} is not one of strict, accept-new, off"),
            }),
        }
    }
}

/// The smallest maximum packet size an engine accepts (1 KiB).
pub const MIN_PACKET_SIZE: u32 = 1024;
/// The largest maximum packet size an engine accepts (65,535 bytes: an SSH packet must fit a
/// TCP segment).
pub const MAX_PACKET_SIZE: u32 = 65_535;
/// The default maximum packet size (32 KiB, as OpenSSH).
pub const DEFAULT_PACKET_SIZE: u32 = 32_768;
/// The default SSH channel window (2 MiB).
pub const DEFAULT_WINDOW_SIZE: u32 = 2 * 1024 * 1024;

/// Checks an SSH channel's window and maximum packet size, each `None` for its default, and
/// returns both with the defaults filled in: the packet size within
/// [`MIN_PACKET_SIZE`]..=[`MAX_PACKET_SIZE`], the window at least one packet. The error names
/// the setting (`max_packet_size`, `window_size`) and the allowed range.
pub fn channel_sizes(window: Option<u32>, packet: Option<u32>) -> Result<(u32, u32), Error> {
    let packet = packet.unwrap_or(DEFAULT_PACKET_SIZE);
    if !(MIN_PACKET_SIZE..=MAX_PACKET_SIZE).contains(&packet) {
        return Err(Error::InvalidSetting {
            setting: "max_packet_size",
            reason: format!(
                "{packet} bytes is outside {MIN_PACKET_SIZE}..={MAX_PACKET_SIZE} (an SSH packet must fit a 65,535-byte TCP segment)"
            ),
        });
    }
    let window = window.unwrap_or(DEFAULT_WINDOW_SIZE);
    if window < packet {
        return Err(Error::InvalidSetting {
            setting: "window_size",
            reason: format!(
                "{window} bytes is smaller than the maximum packet size ({packet} bytes): allowed {packet}..={}",
                u32::MAX
            ),
        });
    }
    Ok((window, packet))
}

/// The default number of unanswered keepalives before a connection is dropped (3, as
/// OpenSSH's `ServerAliveCountMax`).
pub const DEFAULT_KEEPALIVE_COUNT: u32 = 3;

#[cfg(test)]
mod tests {

    use super::*;
    use crate::config::FileConfig;
    use std::path::PathBuf;

    #[test]
    fn cipher_names_parse_and_a_bad_one_is_named() {
        for c in [Cipher::Auto, Cipher::AesGcm, Cipher::Chacha20] {
            assert_eq!(c.as_str().parse::<Cipher>().unwrap(), c);
        }
        let e = "rot13".parse::<Cipher>().unwrap_err().to_string();
        assert!(e.contains("cipher") && e.contains("rot13"), "{e}");
        let cfg = FileConfig::parse("cipher = \"chacha20\"\n", &p()).unwrap();
        assert_eq!(cfg.cipher, Some(Cipher::Chacha20));
        let e = FileConfig::parse("cipher = \"des\"\n", &p())
            .unwrap_err()
            .to_string();
        assert!(e.contains("fleetsh.toml") && e.contains("des"), "{e}");
    }

    #[test]
    fn host_key_check_parses_names() {
        assert_eq!(
            "strict".parse::<HostKeyCheck>().unwrap(),
            HostKeyCheck::Strict
        );
        assert_eq!(
            "accept-new".parse::<HostKeyCheck>().unwrap(),
            HostKeyCheck::AcceptNew
        );
        assert_eq!("off".parse::<HostKeyCheck>().unwrap(), HostKeyCheck::Off);
        let msg = "sometimes".parse::<HostKeyCheck>().unwrap_err().to_string();
        assert!(
            msg.contains("sometimes") && msg.contains("host_key_check"),
            "{msg}"
        );
    }

    fn p() -> PathBuf {
        PathBuf::from("fleetsh.toml")
    }
}

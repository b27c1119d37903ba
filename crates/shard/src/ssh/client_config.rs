//! The russh client configuration: fleetsh's defaults, the options an engine sets on top of
//! them, and the cipher and key exchange orders.

use std::sync::Arc;
use std::time::Duration;

use russh::client;

/// Keepalive settings (`ServerAliveInterval`, `ServerAliveCountMax`): after `interval` without
/// data from the server a keepalive request is sent; after `max` unanswered ones the connection
/// is closed and the host fails as `disconnected`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Keepalive {
    /// Idle time before a keepalive request.
    pub interval: Duration,
    /// Unanswered requests before the connection is dropped.
    pub max: usize,
}

/// The russh client configuration fleetsh uses by default: `nodelay` on (without it one host at
/// a time costs ~44 ms instead of ~1.4 ms), no inactivity timeout (command timeouts are ours),
/// a channel buffer of 16 messages instead of 100 (fleetsh drains every channel continuously,
/// and the buffer is what a host that floods output can make the client hold: up to 16
/// packets of 32 KiB per host in flight, instead of 100), and the key exchange guessed while
/// the servers agree with our first choices (`client::KexGuess`, a new hint per call: one
/// round trip less per handshake).
///
/// The ciphers are russh's safe set in the order [`ciphers_for`] gives for this CPU.
pub fn default_client_config() -> client::Config {
    let mut c = client::Config {
        nodelay: true,
        channel_buffer_size: 16,
        kex_guess: Some(Arc::new(client::KexGuess::new())),
        ..Default::default()
    };
    c.preferred.cipher = ciphers_for(fleetsh_core::Cipher::Auto).into();
    c
}

/// The session ciphers [`ClientOptions::ciphers`] may name: russh's safe set and
/// `aes128-gcm@openssh.com` (OpenSSH names).
pub const CIPHER_NAMES: &[&str] = &[
    "aes256-gcm@openssh.com",
    "chacha20-poly1305@openssh.com",
    "aes128-gcm@openssh.com",
    "aes256-ctr",
    "aes192-ctr",
    "aes128-ctr",
];

/// russh's client configuration, as the engine builds it.
pub type ClientConfig = client::Config;

/// What an engine sets in its client configuration, on top of [`default_client_config`]
/// (the public crate's builder options; validated there).
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Key exchange preference.
    pub kex: fleetsh_core::Kex,
    /// Cipher preference (the order of the safe set).
    pub cipher: fleetsh_core::Cipher,
    /// Exactly these ciphers, in this order (OpenSSH names, from [`CIPHER_NAMES`]).
    pub ciphers: Option<Vec<String>>,
    /// Guess the key exchange packet.
    pub kex_guess: bool,
    /// Keepalive requests (`None`: off).
    pub keepalive: Option<Keepalive>,
    /// Close a connection idle this long (`None`: never).
    pub inactivity_timeout: Option<Duration>,
    /// Channel window in bytes (`None`: russh's default, 2 MiB).
    pub window_size: Option<u32>,
    /// Largest channel data packet accepted, in bytes (`None`: 32 KiB).
    pub maximum_packet_size: Option<u32>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            kex: fleetsh_core::Kex::Default,
            cipher: fleetsh_core::Cipher::Auto,
            ciphers: None,
            kex_guess: true,
            keepalive: None,
            inactivity_timeout: None,
            window_size: None,
            maximum_packet_size: None,
        }
    }
}

/// [`default_client_config`] with `options` applied; `Err` names a cipher outside
/// [`CIPHER_NAMES`].
pub fn client_config_with(options: &ClientOptions) -> Result<client::Config, String> {
    let mut c = default_client_config();
    if options.kex == fleetsh_core::Kex::Curve25519 {
        c.preferred.kex = curve25519_first(&c.preferred.kex).into();
    }
    c.preferred.cipher = match &options.ciphers {
        Some(names) => {
            let mut list = Vec::with_capacity(names.len());
            for name in names {
                let known = CIPHER_NAMES
                    .iter()
                    .find(|n| **n == name.as_str())
                    .and_then(|n| russh::cipher::Name::try_from(*n).ok());
                match known {
                    Some(n) => list.push(n),
                    None => {
                        return Err(format!(
                            "unknown cipher {name:?} (known: {})",
                            CIPHER_NAMES.join(", ")
                        ));
                    }
                }
            }
            if list.is_empty() {
                return Err(format!(
                    "no cipher named (known: {})",
                    CIPHER_NAMES.join(", ")
                ));
            }
            list.into()
        }
        None => ciphers_for(options.cipher).into(),
    };
    if !options.kex_guess {
        c.kex_guess = None;
    }
    if let Some(k) = options.keepalive {
        c.keepalive_interval = Some(k.interval);
        c.keepalive_max = k.max;
    }
    c.inactivity_timeout = options.inactivity_timeout;
    if let Some(w) = options.window_size {
        c.window_size = w;
    }
    if let Some(p) = options.maximum_packet_size {
        c.maximum_packet_size = p;
    }
    Ok(c)
}

/// russh's cipher set in the order `pref` asks for (see [`fleetsh_core::Cipher`]).
pub fn ciphers_for(pref: fleetsh_core::Cipher) -> Vec<russh::cipher::Name> {
    let base = russh::Preferred::default().cipher;
    cipher_order(&base, pref.resolve() == fleetsh_core::Cipher::AesGcm)
}

/// `ciphers` with `aes256-gcm@openssh.com` first when `aes_gcm_hw` (the CPU computes AES-GCM in
/// hardware: [`fleetsh_core::aes_gcm_in_hardware`]), the rest in their order; unchanged
/// (ChaCha20-Poly1305 first, as russh and OpenSSH order them) otherwise, or when the list has
/// no AES-256-GCM. TLS stacks choose the same way (BoringSSL, Go): with AES and carry-less
/// multiply instructions AES-GCM is the faster AEAD, and measured here it cut the client's CPU
/// per GB of a transfer by 24–48% (docs/benchmarks.md, "AES-GCM first"); without them ChaCha20
/// is faster and needs no table lookups. Both are AEADs of OpenSSH's default set; AES-GCM was
/// never exposed to the Terrapin prefix truncation that ChaCha20-Poly1305 needed strict key
/// exchange for (which fleetsh offers either way).
pub(crate) fn cipher_order(
    ciphers: &[russh::cipher::Name],
    aes_gcm_hw: bool,
) -> Vec<russh::cipher::Name> {
    let first = [russh::cipher::AES_256_GCM];
    if !aes_gcm_hw || !ciphers.contains(&first[0]) {
        return ciphers.to_vec();
    }
    to_front(&first, ciphers)
}

/// `kex` with `curve25519-sha256` (and its pre-RFC name) moved to the front, the rest in
/// their order.
pub fn curve25519_first(kex: &[russh::kex::Name]) -> Vec<russh::kex::Name> {
    to_front(
        &[russh::kex::CURVE25519, russh::kex::CURVE25519_PRE_RFC_8731],
        kex,
    )
}

/// `first`, then the names of `list` that are not in `first`, in their order.
fn to_front<T: Copy + PartialEq>(first: &[T], list: &[T]) -> Vec<T> {
    let mut v = first.to_vec();
    v.extend(list.iter().filter(|n| !first.contains(n)).copied());
    v
}

/// A copy of `c` (russh's `Config` is not `Clone`: its `SshId` is not).
pub fn clone_config(c: &client::Config) -> client::Config {
    client::Config {
        client_id: match &c.client_id {
            russh::SshId::Standard(s) => russh::SshId::Standard(s.clone()),
            russh::SshId::Raw(s) => russh::SshId::Raw(s.clone()),
        },
        limits: c.limits.clone(),
        window_size: c.window_size,
        maximum_packet_size: c.maximum_packet_size,
        channel_buffer_size: c.channel_buffer_size,
        preferred: c.preferred.clone(),
        inactivity_timeout: c.inactivity_timeout,
        keepalive_interval: c.keepalive_interval,
        keepalive_max: c.keepalive_max,
        anonymous: c.anonymous,
        gex: c.gex.clone(),
        nodelay: c.nodelay,
        kex_guess: c.kex_guess.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aes_gcm_goes_first_only_with_hardware_aes_gcm() {
        use russh::cipher::{AES_256_GCM, CHACHA20_POLY1305};
        let russh_default = russh::Preferred::default().cipher.to_vec();
        assert_eq!(russh_default[0], CHACHA20_POLY1305);
        assert_eq!(cipher_order(&russh_default, false), russh_default);
        let hw = cipher_order(&russh_default, true);
        assert_eq!(hw[0], AES_256_GCM);
        assert_eq!(hw[1], CHACHA20_POLY1305);
        assert_eq!(hw.len(), russh_default.len());
        // A list without AES-256-GCM (a caller's choice) is left as it is.
        assert_eq!(
            cipher_order(&[CHACHA20_POLY1305], true),
            vec![CHACHA20_POLY1305]
        );
        // The engine's default follows this CPU.
        let first = default_client_config().preferred.cipher[0];
        let want = if fleetsh_core::aes_gcm_in_hardware() {
            AES_256_GCM
        } else {
            CHACHA20_POLY1305
        };
        assert_eq!(first, want);
        assert_eq!(ciphers_for(fleetsh_core::Cipher::AesGcm)[0], AES_256_GCM);
        assert_eq!(ciphers_for(fleetsh_core::Cipher::Chacha20), russh_default);
    }

    #[test]
    fn curve25519_first_keeps_the_rest_in_order() {
        let d = default_client_config();
        let v = curve25519_first(&d.preferred.kex);
        assert_eq!(v[0], russh::kex::CURVE25519);
        assert_eq!(v.len(), d.preferred.kex.len());
        let pos = |n| v.iter().position(|k| *k == n).unwrap();
        assert!(pos(russh::kex::MLKEM768X25519_SHA256) > pos(russh::kex::CURVE25519_PRE_RFC_8731));
    }
}

//! Deterministic key derivation: host keys from `(seed, index)`, the client key from `seed`.

use russh::keys::PrivateKey;
use russh::keys::ssh_key::private::Ed25519Keypair;

/// Domain tags so host and client keys never share a seed.
const HOST_DOMAIN: u64 = 0x686f_7374_6b65_7921; // "hostkey!"
/// See [`HOST_DOMAIN`]: the other host key of a `hostkey-mismatch` host.
const MISMATCH_DOMAIN: u64 = 0x6d69_736d_6174_6368; // "mismatch"
/// See [`HOST_DOMAIN`]: the user CA of [`crate::testing::ca_key`].
const CA_DOMAIN: u64 = 0x7573_6572_6361_6b79; // "usercaky"
/// See [`HOST_DOMAIN`].
const CLIENT_DOMAIN: u64 = 0x636c_6965_6e74_6b79; // "clientky"

/// SplitMix64 finaliser: a bijective 64-bit mixer.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// 32 seed bytes from `(domain, seed, index)`: a SplitMix64 stream started from a mix of all three.
fn seed_bytes(domain: u64, seed: u64, index: u64) -> [u8; 32] {
    let mut state = mix(mix(domain ^ seed).wrapping_add(index.wrapping_mul(0x9E37_79B9_7F4A_7C15)));
    let mut out = [0u8; 32];
    for chunk in out.chunks_exact_mut(8) {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        chunk.copy_from_slice(&mix(state).to_le_bytes());
    }
    out
}

/// An Ed25519 private key from a seed, with a comment.
fn ed25519(seed: [u8; 32], comment: &str) -> PrivateKey {
    let keypair = Ed25519Keypair::from_seed(&seed);
    let mut key = PrivateKey::from(keypair);
    key.set_comment(comment);
    key
}

/// The Ed25519 host key of host `index`.
pub(crate) fn host_key(seed: u64, index: usize) -> PrivateKey {
    ed25519(seed_bytes(HOST_DOMAIN, seed, index as u64), "")
}

/// The key a `hostkey-mismatch` host serves instead of [`host_key`] (which `known_hosts` lists).
pub(crate) fn mismatch_host_key(seed: u64, index: usize) -> PrivateKey {
    ed25519(seed_bytes(MISMATCH_DOMAIN, seed, index as u64), "")
}

/// The Ed25519 client key the fleet accepts.
pub(crate) fn client_key(seed: u64) -> PrivateKey {
    ed25519(seed_bytes(CLIENT_DOMAIN, seed, 0), "fleetsh-sim-client")
}

/// A user CA key (tests only: see [`crate::testing::ca_key`]).
pub(crate) fn ca_key(seed: u64) -> PrivateKey {
    ed25519(seed_bytes(CA_DOMAIN, seed, 0), "fleetsh-sim-ca")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_distinct() {
        assert_eq!(host_key(0, 0).public_key(), host_key(0, 0).public_key());
        assert_ne!(host_key(0, 0).public_key(), host_key(0, 1).public_key());
        assert_ne!(host_key(0, 0).public_key(), host_key(1, 0).public_key());
        assert_ne!(
            host_key(0, 0).public_key().key_data(),
            client_key(0).public_key().key_data()
        );
        assert_eq!(client_key(7).public_key(), client_key(7).public_key());
        assert_ne!(
            host_key(0, 3).public_key().key_data(),
            mismatch_host_key(0, 3).public_key().key_data()
        );
        assert_eq!(
            mismatch_host_key(0, 3).public_key(),
            mismatch_host_key(0, 3).public_key()
        );
        assert_eq!(client_key(0).algorithm(), russh::keys::Algorithm::Ed25519);
    }
}

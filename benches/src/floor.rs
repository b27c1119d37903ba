//! The client's crypto floor per handshake, measured in this process with the primitives the
//! client runs: what no client can avoid per host. x25519 (aws-lc-rs: key pair and agreement),
//! ML-KEM-768 for the hybrid exchange (aws-lc-rs: key pair and decapsulation), the Ed25519
//! host-signature check as russh makes it (ssh-key, i.e. ed25519-dalek, from the key's bytes),
//! the Ed25519 user-authentication signature (aws-lc-rs, as `fleetsh_shard::ssh::auth` signs) and
//! SHA-256 over an exchange hash's input. Each is the median of a few rounds of a loop.

use std::time::Instant;

use anyhow::{Context, Result, anyhow};
use aws_lc_rs::agreement::{self, EphemeralPrivateKey, UnparsedPublicKey, X25519};
use aws_lc_rs::kem::{Ciphertext, DecapsulationKey, ML_KEM_768};
use aws_lc_rs::signature::Ed25519KeyPair;
use russh::keys::ssh_key;

/// Calls per round when the crypto floor is measured ([`measure`]): about a second.
pub const ITERS: usize = 1000;
/// The same, for the floor measured before each sample of `echo` and `kex`: about 0.3 s.
pub const ITERS_PER_SAMPLE: usize = 300;

/// µs per handshake for each part.
#[derive(Debug, Clone, Copy)]
pub struct Floor {
    pub x25519: f64,
    pub mlkem: f64,
    pub host_sig_check: f64,
    pub user_sig: f64,
    pub hash: f64,
}

impl Floor {
    /// curve25519-sha256 with Ed25519 host and user keys.
    pub fn curve25519(&self) -> f64 {
        self.x25519 + self.host_sig_check + self.user_sig + self.hash
    }

    /// mlkem768x25519-sha256 with Ed25519 host and user keys.
    pub fn mlkem768x25519(&self) -> f64 {
        self.curve25519() + self.mlkem
    }

    /// The floor of the exchange `kex` negotiates with the simulator.
    pub fn for_kex(&self, kex: crate::measure::Kex) -> f64 {
        match kex {
            crate::measure::Kex::Curve25519 => self.curve25519(),
            crate::measure::Kex::Default => self.mlkem768x25519(),
        }
    }
}

const ROUNDS: usize = 5;

/// Median over `ROUNDS` rounds of µs per call of `f`, `iters` calls per round.
fn per_call(iters: usize, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    let mut rounds = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let t = Instant::now();
        for _ in 0..iters {
            f()?;
        }
        rounds.push(t.elapsed().as_secs_f64() * 1e6 / iters.max(1) as f64);
    }
    rounds.sort_by(f64::total_cmp);
    rounds
        .get(ROUNDS / 2)
        .copied()
        .ok_or_else(|| anyhow!("no rounds"))
}

/// Measures the floor with `iters` calls per round (1,000 takes about a second).
pub fn measure(iters: usize) -> Result<Floor> {
    let rng = aws_lc_rs::rand::SystemRandom::new();

    // x25519: our key pair, then the agreement with the server's public key.
    let server = EphemeralPrivateKey::generate(&X25519, &rng).map_err(|_| anyhow!("x25519"))?;
    let server_pub = server
        .compute_public_key()
        .map_err(|_| anyhow!("x25519"))?
        .as_ref()
        .to_vec();
    let x25519 = per_call(iters, || {
        let ours = EphemeralPrivateKey::generate(&X25519, &rng).map_err(|_| anyhow!("x25519"))?;
        ours.compute_public_key().map_err(|_| anyhow!("x25519"))?;
        agreement::agree_ephemeral(
            ours,
            UnparsedPublicKey::new(&X25519, &server_pub),
            (),
            |k| Ok(k.len()),
        )
        .map_err(|()| anyhow!("x25519 agreement"))?;
        Ok(())
    })?;

    // ML-KEM-768: our key pair, then the decapsulation of the server's ciphertext. One
    // ciphertext serves every round: decapsulating one made for another key costs the same
    // (ML-KEM's implicit rejection re-encrypts and compares either way).
    let ct = {
        let dk = DecapsulationKey::generate(&ML_KEM_768).map_err(|_| anyhow!("ml-kem"))?;
        let ek = dk.encapsulation_key().map_err(|_| anyhow!("ml-kem"))?;
        let (ct, _) = ek.encapsulate().map_err(|_| anyhow!("ml-kem"))?;
        ct.as_ref().to_vec()
    };
    let mlkem = per_call(iters, || {
        let dk = DecapsulationKey::generate(&ML_KEM_768).map_err(|_| anyhow!("ml-kem"))?;
        dk.encapsulation_key()
            .and_then(|ek| ek.key_bytes())
            .map_err(|_| anyhow!("ml-kem"))?;
        dk.decapsulate(Ciphertext::from(ct.as_slice()))
            .map_err(|_| anyhow!("ml-kem"))?;
        Ok(())
    })?;

    // The host's signature over an exchange hash, checked as russh checks it.
    let host = ssh_key::PrivateKey::from(ssh_key::private::Ed25519Keypair::from_seed(&[7; 32]));
    let hash = [9u8; 32];
    let sig: ssh_key::Signature =
        russh::keys::signature::Signer::try_sign(&host, &hash).context("ssh-key signature")?;
    let public = host.public_key().to_bytes().context("public key")?;
    let host_sig_check = per_call(iters, || {
        // From the key's wire bytes, as a server's key arrives.
        let key = ssh_key::PublicKey::from_bytes(&public).context("public key")?;
        russh::keys::signature::Verifier::verify(&key, &hash, &sig)
            .map_err(|_| anyhow!("host signature refused"))?;
        Ok(())
    })?;

    // Our signature over the user-authentication request (~150 bytes).
    let user = Ed25519KeyPair::from_seed_unchecked(&[5; 32]).map_err(|_| anyhow!("ed25519"))?;
    let request = [3u8; 150];
    let user_sig = per_call(iters, || {
        std::hint::black_box(user.sign(&request));
        Ok(())
    })?;

    // SHA-256 of an exchange hash's input (ids, both KEXINITs, host key, both ephemeral keys
    // and the secret: ~2 KB) plus the six key derivations (~100 bytes each).
    let input = [1u8; 2048];
    let hash_us = per_call(iters, || {
        std::hint::black_box(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            &input,
        ));
        for part in input.chunks(100).take(6) {
            std::hint::black_box(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, part));
        }
        Ok(())
    })?;

    Ok(Floor {
        x25519,
        mlkem,
        host_sig_check,
        user_sig,
        hash: hash_us,
    })
}

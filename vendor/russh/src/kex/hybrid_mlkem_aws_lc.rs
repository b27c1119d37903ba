//! mlkem768x25519-sha256 on aws-lc-rs primitives (fleetsh's patch of russh; the
//! wire format and the key derivation are those of `hybrid_mlkem.rs`, which uses
//! the RustCrypto `ml-kem` and curve25519-dalek crates).
use aws_lc_rs::agreement::PrivateKey;
use aws_lc_rs::kem::{Ciphertext, DecapsulationKey, EncapsulationKey, ML_KEM_768};
use byteorder::{BigEndian, ByteOrder};
use log::debug;
use sha2::Digest;
use ssh_encoding::{Encode, Writer};

use super::curve25519::{x25519_agree, x25519_generate};
use super::{compute_keys, KexAlgorithm, KexAlgorithmImplementor, KexType, SharedSecret};
use crate::mac;
use crate::session::Exchange;
use crate::{cipher, msg, CryptoVec, Error};

const MLKEM768_PUBLIC_KEY_SIZE: usize = 1184;
const MLKEM768_CIPHERTEXT_SIZE: usize = 1088;
const X25519_PUBLIC_KEY_SIZE: usize = 32;

pub struct MlKem768X25519KexType {}

impl KexType for MlKem768X25519KexType {
    fn make(&self) -> KexAlgorithm {
        MlKem768X25519Kex {
            mlkem_secret: None,
            x25519_secret: None,
            k_pq: None,
            k_cl: None,
        }
        .into()
    }
}

#[doc(hidden)]
pub struct MlKem768X25519Kex {
    mlkem_secret: Option<DecapsulationKey>,
    x25519_secret: Option<PrivateKey>,
    k_pq: Option<[u8; 32]>,
    k_cl: Option<[u8; 32]>,
}

impl std::fmt::Debug for MlKem768X25519Kex {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(
            f,
            "MlKem768X25519Kex {{ mlkem_secret: [hidden], x25519_secret: [hidden], k_pq: [hidden], k_cl: [hidden] }}",
        )
    }
}

fn shared_32(bytes: &[u8]) -> Result<[u8; 32], Error> {
    bytes.try_into().map_err(|_| Error::Kex)
}

impl MlKem768X25519Kex {
    /// K = SHA-256(K_PQ || K_CL), the hybrid shared secret.
    fn combined(&self) -> Result<[u8; 32], Error> {
        let k_pq = self.k_pq.as_ref().ok_or(Error::KexInit)?;
        let k_cl = self.k_cl.as_ref().ok_or(Error::KexInit)?;
        let mut hasher = sha2::Sha256::new();
        hasher.update(k_pq);
        hasher.update(k_cl);
        Ok(hasher.finalize().into())
    }
}

impl KexAlgorithmImplementor for MlKem768X25519Kex {
    fn skip_exchange(&self) -> bool {
        false
    }

    fn server_dh(&mut self, exchange: &mut Exchange, payload: &[u8]) -> Result<(), Error> {
        debug!("server_dh (hybrid ML-KEM)");

        if payload.first() != Some(&msg::KEX_HYBRID_INIT) {
            return Err(Error::Inconsistent);
        }

        #[allow(clippy::indexing_slicing)]
        let c_init_len = BigEndian::read_u32(&payload[1..]) as usize;

        if payload.len() < 5 + c_init_len {
            return Err(Error::Inconsistent);
        }

        if c_init_len != MLKEM768_PUBLIC_KEY_SIZE + X25519_PUBLIC_KEY_SIZE {
            return Err(Error::Kex);
        }

        #[allow(clippy::indexing_slicing)]
        let c_init = &payload[5..5 + c_init_len];

        #[allow(clippy::indexing_slicing)]
        let c_pk2_bytes = &c_init[..MLKEM768_PUBLIC_KEY_SIZE];
        #[allow(clippy::indexing_slicing)]
        let c_pk1_bytes = &c_init[MLKEM768_PUBLIC_KEY_SIZE..];

        let c_pk2 = EncapsulationKey::new(&ML_KEM_768, c_pk2_bytes).map_err(|_| Error::Kex)?;
        let (s_ct2, k_pq) = c_pk2.encapsulate().map_err(|_| Error::Kex)?;

        let (s_secret, s_pk1) = x25519_generate()?;
        let k_cl = x25519_agree(&s_secret, c_pk1_bytes).inspect_err(|_| {
            debug!("client sent a low-order curve25519 pubkey");
        })?;

        exchange.server_ephemeral.clear();
        exchange.server_ephemeral.extend_from_slice(s_ct2.as_ref());
        exchange.server_ephemeral.extend_from_slice(&s_pk1);

        self.k_pq = Some(shared_32(k_pq.as_ref())?);
        self.k_cl = Some(k_cl);

        Ok(())
    }

    fn client_dh(
        &mut self,
        client_ephemeral: &mut Vec<u8>,
        writer: &mut impl Writer,
    ) -> Result<(), Error> {
        let mlkem_sk = DecapsulationKey::generate(&ML_KEM_768).map_err(|_| Error::KexInit)?;
        let mlkem_pk = mlkem_sk
            .encapsulation_key()
            .and_then(|pk| pk.key_bytes())
            .map_err(|_| Error::KexInit)?;

        let (x25519_secret, x25519_pk) = x25519_generate()?;

        client_ephemeral.clear();
        client_ephemeral.extend_from_slice(mlkem_pk.as_ref());
        client_ephemeral.extend_from_slice(&x25519_pk);

        msg::KEX_HYBRID_INIT.encode(writer)?;
        client_ephemeral.as_slice().encode(writer)?;

        self.mlkem_secret = Some(mlkem_sk);
        self.x25519_secret = Some(x25519_secret);

        Ok(())
    }

    fn compute_shared_secret(&mut self, remote_pubkey_: &[u8]) -> Result<(), Error> {
        if remote_pubkey_.len() != MLKEM768_CIPHERTEXT_SIZE + X25519_PUBLIC_KEY_SIZE {
            return Err(Error::Kex);
        }

        #[allow(clippy::indexing_slicing)]
        let s_ct2_bytes = &remote_pubkey_[..MLKEM768_CIPHERTEXT_SIZE];
        #[allow(clippy::indexing_slicing)]
        let s_pk1_bytes = &remote_pubkey_[MLKEM768_CIPHERTEXT_SIZE..];

        let mlkem_secret = self.mlkem_secret.take().ok_or(Error::KexInit)?;
        let k_pq = mlkem_secret
            .decapsulate(Ciphertext::from(s_ct2_bytes))
            .map_err(|_| Error::KexInit)?;

        let x25519_secret = self.x25519_secret.take().ok_or(Error::KexInit)?;
        let k_cl = x25519_agree(&x25519_secret, s_pk1_bytes).inspect_err(|_| {
            debug!("server sent a low-order curve25519 pubkey");
        })?;

        self.k_pq = Some(shared_32(k_pq.as_ref())?);
        self.k_cl = Some(k_cl);

        Ok(())
    }

    fn shared_secret_bytes(&self) -> Option<&[u8]> {
        // As in hybrid_mlkem.rs: the X25519 portion.
        self.k_cl.as_ref().map(|k| k.as_slice())
    }

    fn compute_exchange_hash(
        &self,
        key: &[u8],
        exchange: &Exchange,
        buffer: &mut CryptoVec,
    ) -> Result<Vec<u8>, Error> {
        buffer.clear();
        exchange.client_id.encode(buffer)?;
        exchange.server_id.encode(buffer)?;
        exchange.client_kex_init.encode(buffer)?;
        exchange.server_kex_init.encode(buffer)?;

        buffer.extend(key);

        exchange.client_ephemeral.encode(buffer)?;
        exchange.server_ephemeral.encode(buffer)?;

        let k = self.combined()?;
        k[..].encode(buffer)?;

        let mut hasher = sha2::Sha256::new();
        hasher.update(&buffer);

        Ok(hasher.finalize().to_vec())
    }

    fn compute_keys(
        &self,
        session_id: &[u8],
        exchange_hash: &[u8],
        cipher: cipher::Name,
        remote_to_local_mac: mac::Name,
        local_to_remote_mac: mac::Name,
        is_server: bool,
    ) -> Result<super::cipher::CipherPair, Error> {
        let k = self.combined()?;
        let shared_secret = SharedSecret::from_string(&k)?;

        compute_keys::<sha2::Sha256>(
            Some(&shared_secret),
            session_id,
            exchange_hash,
            cipher,
            remote_to_local_mac,
            local_to_remote_mac,
            is_server,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ml_kem::kem::{Decapsulate, Encapsulate};
    use ml_kem::{Kem, KeyExport, MlKem768, TryKeyInit};

    fn fresh() -> MlKem768X25519Kex {
        MlKem768X25519Kex {
            mlkem_secret: None,
            x25519_secret: None,
            k_pq: None,
            k_cl: None,
        }
    }

    #[test]
    fn client_and_server_agree() {
        let (mut client, mut server) = (fresh(), fresh());
        let mut client_ephemeral = Vec::new();
        let mut init = Vec::new();
        client.client_dh(&mut client_ephemeral, &mut init).unwrap();
        assert_eq!(
            client_ephemeral.len(),
            MLKEM768_PUBLIC_KEY_SIZE + X25519_PUBLIC_KEY_SIZE
        );
        let mut exchange = Exchange::default();
        server.server_dh(&mut exchange, &init).unwrap();
        assert_eq!(
            exchange.server_ephemeral.len(),
            MLKEM768_CIPHERTEXT_SIZE + X25519_PUBLIC_KEY_SIZE
        );
        client
            .compute_shared_secret(&exchange.server_ephemeral)
            .unwrap();
        assert_eq!(client.k_pq, server.k_pq);
        assert_eq!(client.k_cl, server.k_cl);
        assert_eq!(client.combined().unwrap(), server.combined().unwrap());
    }

    /// The aws-lc-rs client against a server built from the RustCrypto `ml-kem` and
    /// curve25519-dalek crates (what upstream russh runs): same secrets.
    #[test]
    fn client_interoperates_with_the_rustcrypto_server() {
        use curve25519_dalek::montgomery::MontgomeryPoint;
        let mut client = fresh();
        let mut c_init = Vec::new();
        let mut init = Vec::new();
        client.client_dh(&mut c_init, &mut init).unwrap();

        let (pk2, pk1) = c_init.split_at(MLKEM768_PUBLIC_KEY_SIZE);
        let pk2 = ml_kem::kem::EncapsulationKey::<MlKem768>::new_from_slice(pk2).unwrap();
        let (ct2, k_pq) = pk2.encapsulate_with_rng(&mut rand::rng());
        let s_secret = rand::random::<[u8; 32]>();
        let s_pk1 = MontgomeryPoint::mul_base_clamped(s_secret);
        let k_cl = MontgomeryPoint(pk1.try_into().unwrap()).mul_clamped(s_secret);

        let mut reply = ct2.as_slice().to_vec();
        reply.extend_from_slice(&s_pk1.0);
        client.compute_shared_secret(&reply).unwrap();
        assert_eq!(client.k_pq.unwrap().as_slice(), k_pq.as_slice());
        assert_eq!(client.k_cl.unwrap(), k_cl.0);
    }

    /// A RustCrypto client against the aws-lc-rs server: same secrets.
    #[test]
    fn server_interoperates_with_the_rustcrypto_client() {
        use curve25519_dalek::montgomery::MontgomeryPoint;
        let (sk2, pk2) = MlKem768::generate_keypair_from_rng(&mut rand::rng());
        let c_secret = rand::random::<[u8; 32]>();
        let c_pk1 = MontgomeryPoint::mul_base_clamped(c_secret);
        let mut c_init = Vec::new();
        c_init.extend(pk2.to_bytes());
        c_init.extend(&c_pk1.0);
        let mut init = Vec::new();
        msg::KEX_HYBRID_INIT.encode(&mut init).unwrap();
        c_init.as_slice().encode(&mut init).unwrap();

        let mut server = fresh();
        let mut exchange = Exchange::default();
        server.server_dh(&mut exchange, &init).unwrap();
        let (ct2, s_pk1) = exchange.server_ephemeral.split_at(MLKEM768_CIPHERTEXT_SIZE);
        let ct2 = ml_kem::Ciphertext::<MlKem768>::try_from(ct2).unwrap();
        let k_pq = sk2.decapsulate(&ct2);
        let k_cl = MontgomeryPoint(s_pk1.try_into().unwrap()).mul_clamped(c_secret);
        assert_eq!(server.k_pq.unwrap().as_slice(), k_pq.as_slice());
        assert_eq!(server.k_cl.unwrap(), k_cl.0);
    }

    #[test]
    fn bad_lengths_and_low_order_points_are_refused() {
        let mut client = fresh();
        let mut e = Vec::new();
        let mut init = Vec::new();
        client.client_dh(&mut e, &mut init).unwrap();
        assert!(client.compute_shared_secret(&[0u8; 100]).is_err());

        let mut server = fresh();
        let mut bad = Vec::new();
        msg::KEX_HYBRID_INIT.encode(&mut bad).unwrap();
        vec![0u8; 100].encode(&mut bad).unwrap();
        assert!(server.server_dh(&mut Exchange::default(), &bad).is_err());

        // a valid ML-KEM key with an all-zero (low-order) X25519 point
        let mut low = e[..MLKEM768_PUBLIC_KEY_SIZE].to_vec();
        low.extend_from_slice(&[0u8; 32]);
        let mut init = Vec::new();
        msg::KEX_HYBRID_INIT.encode(&mut init).unwrap();
        low.as_slice().encode(&mut init).unwrap();
        assert!(fresh().server_dh(&mut Exchange::default(), &init).is_err());
    }
}

//! Key material, loaded once per engine and shared by every host of every run: private keys
//! and their certificates, the passphrase prompt, the Ed25519 signer.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use russh::keys::PrivateKey;

use crate::Error;
pub use fleetsh_core::Secret;

/// A private key loaded from a file, and its OpenSSH user certificate if one was found.
#[derive(Clone)]
pub struct LoadedKey {
    /// The file it came from.
    pub path: PathBuf,
    /// The key.
    pub key: Arc<PrivateKey>,
    /// `PATH-cert.pub` beside the key (OpenSSH's convention) or a `CertificateFile` whose
    /// public key matches; tried before the plain key.
    pub cert: Option<(PathBuf, Arc<russh::keys::Certificate>)>,
    /// For an Ed25519 key: the key pair expanded once for aws-lc-rs, which signs every
    /// host's authentication request (ssh-key would re-derive the public key per signature).
    ed25519: Option<Ed25519Signer>,
}

impl LoadedKey {
    /// A key loaded from `path`, with its certificate if it has one.
    pub fn new(
        path: PathBuf,
        key: Arc<PrivateKey>,
        cert: Option<(PathBuf, Arc<russh::keys::Certificate>)>,
    ) -> Self {
        let ed25519 = Ed25519Signer::for_key(&key);
        LoadedKey {
            path,
            key,
            cert,
            ed25519,
        }
    }

    /// The aws-lc-rs signer of an Ed25519 key (`None` for other algorithms).
    pub(crate) fn ed25519_signer(&self) -> Option<Ed25519Signer> {
        self.ed25519.clone()
    }
}

/// Signs user-authentication requests (RFC 4252 section 7) with an Ed25519 key pair held by
/// aws-lc-rs, expanded once per key: one Ed25519 signature per host, nothing else.
#[derive(Clone)]
pub(crate) struct Ed25519Signer(Arc<aws_lc_rs::signature::Ed25519KeyPair>);

impl Ed25519Signer {
    fn for_key(key: &PrivateKey) -> Option<Self> {
        let pair = key.key_data().ed25519()?;
        let seed: &[u8; 32] = pair.private.as_ref();
        let public: &[u8; 32] = pair.public.as_ref();
        aws_lc_rs::signature::Ed25519KeyPair::from_seed_and_public_key(seed, public)
            .ok()
            .map(|p| Ed25519Signer(Arc::new(p)))
    }

    /// `to_sign` followed by the signature blob, as russh's signers return it:
    /// `string(string("ssh-ed25519") || string(signature))`.
    fn append_signature(&self, mut to_sign: Vec<u8>) -> Vec<u8> {
        const ALG: &[u8] = b"ssh-ed25519";
        let sig = self.0.sign(&to_sign);
        let sig = sig.as_ref();
        let blob = 4 + ALG.len() + 4 + sig.len();
        to_sign.reserve(4 + blob);
        for part in [
            &(blob as u32).to_be_bytes()[..],
            &(ALG.len() as u32).to_be_bytes(),
            ALG,
        ] {
            to_sign.extend_from_slice(part);
        }
        to_sign.extend_from_slice(&(sig.len() as u32).to_be_bytes());
        to_sign.extend_from_slice(sig);
        to_sign
    }
}

/// The session ended while russh waited for a signature.
#[derive(Debug, thiserror::Error)]
#[error("the session ended during public-key authentication")]
pub(crate) struct SignerLost;

impl From<russh::SendError> for SignerLost {
    fn from(_: russh::SendError) -> Self {
        SignerLost
    }
}

impl russh::Signer for Ed25519Signer {
    type Error = SignerLost;

    fn auth_sign(
        &mut self,
        _key: &russh::keys::agent::AgentIdentity,
        _hash_alg: Option<russh::keys::HashAlg>,
        to_sign: Vec<u8>,
    ) -> impl std::future::Future<Output = Result<Vec<u8>, SignerLost>> + Send {
        std::future::ready(Ok(self.append_signature(to_sign)))
    }
}

/// Asks for the passphrase of an encrypted key (e.g. on the terminal); `None` gives up.
/// Called at most once per key file per engine, never per host.
#[derive(Clone)]
pub struct PassphrasePrompt(Arc<AskFn>);

type AskFn = dyn Fn(&Path) -> Option<Secret> + Send + Sync;

impl PassphrasePrompt {
    /// A prompt calling `f` with the key file's path.
    pub fn new(f: impl Fn(&Path) -> Option<Secret> + Send + Sync + 'static) -> Self {
        PassphrasePrompt(Arc::new(f))
    }

    fn ask(&self, path: &Path) -> Option<Secret> {
        (self.0)(path)
    }
}

impl fmt::Debug for PassphrasePrompt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PassphrasePrompt(..)")
    }
}

impl fmt::Debug for LoadedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadedKey")
            .field("path", &self.path)
            .field("algorithm", &self.key.algorithm().as_str())
            .field("cert", &self.cert.as_ref().map(|c| &c.0))
            .finish()
    }
}

/// Everything needed to authenticate: keys, agent socket, password.
#[derive(Debug, Clone, Default)]
pub struct AuthMaterial {
    /// Private keys, tried in order after the agent's.
    pub keys: Vec<LoadedKey>,
    /// ssh-agent socket (`SSH_AUTH_SOCK`), if the agent is to be used.
    pub agent: Option<PathBuf>,
    /// Password, tried last when the server offers password authentication.
    pub password: Option<Secret>,
    /// Most concurrent agent signing connections per shard (ssh-agent is single-threaded and
    /// refuses connections under load).
    pub agent_concurrency: usize,
}

/// The default private key files, in OpenSSH's order.
pub fn default_identity_files(home: &Path) -> Vec<PathBuf> {
    ["id_ed25519", "id_ecdsa", "id_rsa"]
        .iter()
        .map(|n| home.join(".ssh").join(n))
        .collect()
}

impl AuthMaterial {
    /// Loads `files`. When `explicit`, every file must load (a clear error names the bad one);
    /// otherwise (default key files) missing files are skipped and unreadable ones are warned
    /// about.
    pub fn load_keys(
        files: &[PathBuf],
        explicit: bool,
        passphrase: Option<&Secret>,
    ) -> Result<Vec<LoadedKey>, Error> {
        Self::load_keys_with(files, &[], explicit, passphrase, None)
    }

    /// [`AuthMaterial::load_keys`], plus certificate files (each paired with the key whose
    /// public key it certifies; a certificate matching no key is an error naming it) and a
    /// prompt for passphrases that `passphrase` does not open.
    pub fn load_keys_with(
        files: &[PathBuf],
        cert_files: &[PathBuf],
        explicit: bool,
        passphrase: Option<&Secret>,
        prompt: Option<&PassphrasePrompt>,
    ) -> Result<Vec<LoadedKey>, Error> {
        let mut keys = Vec::new();
        for path in files {
            if !explicit && !path.exists() {
                continue;
            }
            warn_if_readable_by_others(path);
            let loaded = match load_key(path, passphrase) {
                Err(reason) if reason.starts_with(ENCRYPTED) => match prompt {
                    Some(p) => match p.ask(path) {
                        Some(pp) => load_key(path, Some(&pp)).map_err(|_| {
                            "cannot decrypt the key with the passphrase entered".to_string()
                        }),
                        None => Err(reason),
                    },
                    None => Err(reason),
                },
                other => other,
            };
            match loaded {
                Ok(key) => {
                    let cert = sibling_cert(path, &key);
                    keys.push(LoadedKey::new(path.clone(), Arc::new(key), cert));
                }
                Err(reason) if explicit => {
                    return Err(Error::Key {
                        path: path.clone(),
                        reason,
                    });
                }
                Err(reason) => tracing::warn!("skipping key {}: {reason}", path.display()),
            }
        }
        for cpath in cert_files {
            let cert = read_cert(cpath).map_err(|reason| Error::Certificate {
                path: cpath.clone(),
                reason,
            })?;
            let Some(k) = keys
                .iter_mut()
                .find(|k| k.key.public_key().key_data() == cert.public_key())
            else {
                return Err(Error::Certificate {
                    path: cpath.clone(),
                    reason: "it matches none of the loaded private keys".into(),
                });
            };
            k.cert = Some((cpath.clone(), Arc::new(cert)));
        }
        Ok(keys)
    }
}

/// The start of the reason a key is refused for want of its passphrase.
const ENCRYPTED: &str = "the key is encrypted";

fn read_cert(path: &Path) -> Result<russh::keys::Certificate, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read it: {e}"))?;
    russh::keys::Certificate::from_openssh(text.trim())
        .map_err(|e| format!("not an OpenSSH certificate ({e})"))
}

/// `KEY-cert.pub` beside `KEY`, if it exists and certifies this key (else a warning).
fn sibling_cert(
    key_path: &Path,
    key: &PrivateKey,
) -> Option<(PathBuf, Arc<russh::keys::Certificate>)> {
    let mut name = key_path.as_os_str().to_owned();
    name.push("-cert.pub");
    let cpath = PathBuf::from(name);
    if !cpath.exists() {
        return None;
    }
    match read_cert(&cpath) {
        Ok(c) if c.public_key() == key.public_key().key_data() => Some((cpath, Arc::new(c))),
        Ok(_) => {
            tracing::warn!(
                "ignoring certificate {}: it certifies another key",
                cpath.display()
            );
            None
        }
        Err(e) => {
            tracing::warn!("ignoring certificate {}: {e}", cpath.display());
            None
        }
    }
}

/// Loads a private key: OpenSSH format first (so an encrypted key gets a precise error), then
/// the other formats russh reads (PEM, PKCS#8).
fn load_key(path: &Path, passphrase: Option<&Secret>) -> Result<PrivateKey, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read it: {e}"))?;
    match PrivateKey::from_openssh(text.trim()) {
        Ok(key) if key.is_encrypted() => {
            let Some(pp) = passphrase else {
                return Err(format!("{ENCRYPTED}; set FLEETSH_PASSPHRASE"));
            };
            key.decrypt(pp.expose().as_bytes()).map_err(|_| {
                "cannot decrypt the key with the passphrase from FLEETSH_PASSPHRASE".into()
            })
        }
        Ok(key) => Ok(key),
        Err(_) => russh::keys::load_secret_key(path, passphrase.map(|p| p.expose()))
            .map_err(|e| key_error_reason(&e, passphrase.is_some())),
    }
}

/// OpenSSH refuses a private key that others can read; fleetsh uses it but says so, once per
/// key file per engine.
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                "permissions {mode:04o} for private key {} are too open: others can read it \
                 (OpenSSH refuses such a key; run chmod 600)",
                path.display()
            );
        }
    }
}

/// Whether others than the owner may read or write `path`.
pub fn key_too_open(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o077 != 0)
}

fn key_error_reason(e: &russh::keys::Error, had_passphrase: bool) -> String {
    let s = e.to_string();
    let lower = s.to_lowercase();
    if lower.contains("encrypted") || lower.contains("passphrase") || lower.contains("decrypt") {
        if had_passphrase {
            "cannot decrypt the key with the passphrase from FLEETSH_PASSPHRASE".into()
        } else {
            format!("{ENCRYPTED}; set FLEETSH_PASSPHRASE")
        }
    } else {
        format!("not a readable private key ({})", lower)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// aws-lc-rs signs exactly as ssh-key does (Ed25519 is deterministic), framed as russh's
    /// signers return it.
    #[test]
    fn ed25519_signer_matches_ssh_key() {
        use russh::keys::signature::Signer as _;
        let pair = russh::keys::ssh_key::private::Ed25519Keypair::from_seed(&[7u8; 32]);
        let key = PrivateKey::from(pair);
        let signer = Ed25519Signer::for_key(&key).expect("an Ed25519 key");
        let data = b"session id and request".to_vec();
        let out = signer.append_signature(data.clone());
        let expected: russh::keys::ssh_key::Signature = key.try_sign(&data).unwrap();
        let (head, blob) = out.split_at(data.len());
        assert_eq!(head, &data[..]);
        let mut want = Vec::new();
        want.extend_from_slice(&(4 + 11 + 4 + 64u32).to_be_bytes());
        want.extend_from_slice(&11u32.to_be_bytes());
        want.extend_from_slice(b"ssh-ed25519");
        want.extend_from_slice(&64u32.to_be_bytes());
        want.extend_from_slice(expected.as_bytes());
        assert_eq!(blob, &want[..]);
    }

    #[test]
    fn secret_debug_hides_value() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "Secret(***)");
        let m = AuthMaterial {
            password: Some(s),
            ..Default::default()
        };
        assert!(!format!("{m:?}").contains("hunter2"));
    }

    #[test]
    fn explicit_missing_key_is_an_error_naming_the_file() {
        let err = AuthMaterial::load_keys(&[PathBuf::from("/nonexistent/id_x")], true, None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent/id_x"), "{err}");
    }

    #[test]
    fn default_missing_keys_are_skipped() {
        let keys =
            AuthMaterial::load_keys(&[PathBuf::from("/nonexistent/id_x")], false, None).unwrap();
        assert!(keys.is_empty());
    }
}

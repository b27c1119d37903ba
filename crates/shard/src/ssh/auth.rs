//! Authentication: the flow every host goes through after the handshake
//! (`authenticate`), and the material it uses: key files and certificates (`keys`), the
//! shard's ssh-agent connections (`agent`).

pub(crate) mod agent;
pub mod keys;

use std::sync::Arc;

use fleetsh_core::{ErrorKind, HostError};
use russh::client::AuthResult;
use russh::keys::{HashAlg, PrivateKeyWithHashAlg};
use russh::{MethodKind, MethodSet};

use self::agent::AgentPool;
pub use self::keys::{
    AuthMaterial, LoadedKey, PassphrasePrompt, Secret, default_identity_files, key_too_open,
};
use self::keys::{Ed25519Signer, SignerLost};
use super::handler::{Handle, describe};
use super::settings::HostProfile;

fn methods_str(m: &MethodSet) -> String {
    if m.is_empty() {
        return "none".into();
    }
    m.iter().map(<&str>::from).collect::<Vec<_>>().join(",")
}

/// What a host can authenticate with: the engine's key material and password, the shard's
/// agent connections, and the host's ssh_config profile (its `IdentityFile`s,
/// `IdentitiesOnly`); and whether the session's first channel is a session channel, which
/// the first signed request then opens in the same write.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Credentials<'a> {
    pub material: &'a AuthMaterial,
    pub agent: Option<&'a AgentPool>,
    pub profile: &'a HostProfile,
    pub opens_session: bool,
}

/// Authenticates as `user`, trying in OpenSSH's order: the agent's keys (unless
/// `IdentitiesOnly`), the key files (each certificate before its key), keyboard-interactive
/// answering password prompts, then password; only methods the server still offers. The
/// error names every method tried and what the server offers.
pub(crate) async fn authenticate(
    handle: &mut Handle,
    user: &str,
    credentials: &Credentials<'_>,
) -> Result<(), HostError> {
    let Credentials {
        material: auth,
        agent,
        profile,
        opens_session,
    } = *credentials;
    // The first signed request carries the session channel's open (docs/benchmarks.md,
    // "Round trips per host against OpenSSH"); later ones do not.
    let mut open_with_next = opens_session;
    let mut tried: Vec<String> = Vec::new();
    let mut offered: Option<MethodSet> = None;
    let allows = |offered: &Option<MethodSet>, m: MethodKind| {
        offered.as_ref().is_none_or(|o| o.contains(&m))
    };
    let lost = |e: russh::Error| {
        HostError::new(
            ErrorKind::Disconnected,
            format!("connection lost during authentication: {}", describe(&e)),
        )
    };
    let mut rsa_hash: Option<Option<HashAlg>> = None;

    // 1. Agent identities (as OpenSSH: agent keys before key files), unless IdentitiesOnly.
    if let Some(agent) = agent.filter(|_| !profile.identities_only) {
        let ids = agent.identities().await;
        for key in ids {
            if !allows(&offered, MethodKind::PublicKey) {
                break;
            }
            let hash = if key.algorithm().is_rsa() {
                best_rsa(handle, &mut rsa_hash).await
            } else {
                None
            };
            let _permit = agent.acquire().await;
            let mut client = match agent.checkout().await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!("ssh-agent: {e}");
                    break;
                }
            };
            tried.push(format!("publickey (agent {})", key.algorithm().as_str()));
            let r = handle
                .authenticate_publickey_with(user, key.clone(), hash, &mut client)
                .await;
            match r {
                Ok(AuthResult::Success) => {
                    agent.checkin(client).await;
                    return Ok(());
                }
                Ok(AuthResult::Failure {
                    remaining_methods, ..
                }) => {
                    agent.checkin(client).await;
                    offered = Some(remaining_methods);
                }
                Err(e) => {
                    // The agent connection may be broken: do not reuse it.
                    tracing::debug!("agent signing failed: {e}");
                    if handle.is_closed() {
                        return Err(lost(russh::Error::Disconnect));
                    }
                }
            }
        }
    }

    // 2. Key files: ssh_config's IdentityFiles for this host, else the engine's.
    let keys = profile.keys.as_deref().unwrap_or(&auth.keys);
    for k in keys {
        if !allows(&offered, MethodKind::PublicKey) {
            break;
        }
        let hash = if k.key.algorithm().is_rsa() {
            best_rsa(handle, &mut rsa_hash).await
        } else {
            None
        };
        if let Some((cpath, cert)) = &k.cert {
            tried.push(format!("publickey certificate ({})", cpath.display()));
            let result = match k.ed25519_signer() {
                Some(signer) => {
                    let open = std::mem::take(&mut open_with_next);
                    signed_auth(handle, user, k, Some(cert), signer, open).await
                }
                None => {
                    handle
                        .authenticate_openssh_cert(user, k.key.clone(), (**cert).clone())
                        .await
                }
            };
            match result {
                Ok(AuthResult::Success) => return Ok(()),
                Ok(AuthResult::Failure {
                    remaining_methods, ..
                }) => offered = Some(remaining_methods),
                Err(e) => return Err(lost(e)),
            }
            if !allows(&offered, MethodKind::PublicKey) {
                break;
            }
        }
        tried.push(format!("publickey ({})", k.path.display()));
        let result = match k.ed25519_signer() {
            Some(signer) => {
                let open = std::mem::take(&mut open_with_next);
                signed_auth(handle, user, k, None, signer, open).await
            }
            None => {
                handle
                    .authenticate_publickey(user, PrivateKeyWithHashAlg::new(k.key.clone(), hash))
                    .await
            }
        };
        match result {
            Ok(AuthResult::Success) => return Ok(()),
            Ok(AuthResult::Failure {
                remaining_methods, ..
            }) => offered = Some(remaining_methods),
            Err(e) => return Err(lost(e)),
        }
    }

    // 3. Keyboard-interactive answering password prompts (PAM servers), then 4. password:
    //    OpenSSH's order.
    if let Some(pw) = &auth.password
        && allows(&offered, MethodKind::KeyboardInteractive)
    {
        tried.push("keyboard-interactive".into());
        match keyboard_interactive(handle, user, pw).await {
            Ok(None) => return Ok(()),
            Ok(Some((remaining, note))) => {
                if let Some(note) = note
                    && let Some(last) = tried.last_mut()
                {
                    last.push_str(&format!(" ({note})"));
                }
                offered = Some(remaining);
            }
            Err(e) => return Err(lost(e)),
        }
    }
    if let Some(pw) = &auth.password
        && allows(&offered, MethodKind::Password)
    {
        tried.push("password".into());
        match handle.authenticate_password(user, pw.expose()).await {
            Ok(AuthResult::Success) => return Ok(()),
            Ok(AuthResult::Failure {
                remaining_methods, ..
            }) => offered = Some(remaining_methods),
            Err(e) => return Err(lost(e)),
        }
    }

    if handle.is_closed() {
        return Err(HostError::new(
            ErrorKind::Disconnected,
            "connection closed by the server during authentication",
        ));
    }
    let tried = if tried.is_empty() {
        "no method (no key, agent or password available)".to_string()
    } else {
        tried.join(", ")
    };
    let offered = match &offered {
        Some(m) => methods_str(m),
        None => "unknown".into(),
    };
    Err(HostError::new(
        ErrorKind::Auth,
        format!("authentication as {user:?} refused; tried {tried}; server offers {offered}"),
    ))
}

/// Ed25519 key file `k` (or its certificate `cert`): signed by aws-lc-rs from the key pair
/// expanded once per key, at once (no offer first) and sent with the service request: one
/// round trip, not three (docs/connecting.md, "Authentication"). With `open_session`, a
/// session channel's open follows the request in the same write; when the key is accepted,
/// the host's first `channel_open_session` gets that channel, one round trip sooner.
async fn signed_auth(
    handle: &mut Handle,
    user: &str,
    k: &LoadedKey,
    cert: Option<&Arc<russh::keys::Certificate>>,
    mut signer: Ed25519Signer,
    open_session: bool,
) -> Result<AuthResult, russh::Error> {
    let (key, cert) = (k.key.public_key().clone(), cert.map(|c| (**c).clone()));
    let r = if open_session {
        handle
            .authenticate_publickey_signed_opening_session(user, key, cert, None, &mut signer)
            .await
    } else {
        handle
            .authenticate_publickey_signed(user, key, cert, None, &mut signer)
            .await
    };
    r.map_err(|_: SignerLost| russh::Error::SendError)
}

/// Keyboard-interactive with the password as the answer to password prompts. `Ok(None)`:
/// authenticated; `Ok(Some((remaining, note)))`: refused (note: why we gave up, if we did).
async fn keyboard_interactive(
    handle: &mut Handle,
    user: &str,
    password: &Secret,
) -> Result<Option<(MethodSet, Option<String>)>, russh::Error> {
    use russh::client::KeyboardInteractiveAuthResponse as R;
    let mut reply = handle
        .authenticate_keyboard_interactive_start(user, None)
        .await?;
    // Servers may send empty rounds; a few are enough for any PAM stack fleetsh can answer.
    for _ in 0..8 {
        match reply {
            R::Success => return Ok(None),
            R::Failure {
                remaining_methods, ..
            } => return Ok(Some((remaining_methods, None))),
            R::InfoRequest { prompts, .. } => {
                let mut answers = Vec::with_capacity(prompts.len());
                for p in &prompts {
                    if p.prompt.to_lowercase().contains("password") && !p.echo {
                        answers.push(password.expose().to_string());
                    } else {
                        // An OTP or question fleetsh cannot answer: give up on this method
                        // (an empty answer fails it without sending the password anywhere).
                        let note = format!("unanswerable prompt {:?}", p.prompt.trim());
                        let r = handle
                            .authenticate_keyboard_interactive_respond(vec![
                                String::new();
                                prompts.len()
                            ])
                            .await?;
                        let remaining = match r {
                            R::Failure {
                                remaining_methods, ..
                            } => remaining_methods,
                            R::Success => return Ok(None),
                            R::InfoRequest { .. } => MethodSet::empty(),
                        };
                        return Ok(Some((remaining, Some(note))));
                    }
                }
                reply = handle
                    .authenticate_keyboard_interactive_respond(answers)
                    .await?;
            }
        }
    }
    Ok(Some((MethodSet::empty(), Some("too many prompts".into()))))
}

/// The RSA signature hash the server accepts (asked once per session).
async fn best_rsa(handle: &Handle, cache: &mut Option<Option<HashAlg>>) -> Option<HashAlg> {
    if let Some(h) = cache {
        return *h;
    }
    // No server-sig-algs extension: assume a modern server (rsa-sha2-256), never SHA-1.
    let h = match handle.best_supported_rsa_hash().await {
        Ok(Some(h)) => h,
        _ => Some(HashAlg::Sha256),
    };
    *cache = Some(h);
    h
}

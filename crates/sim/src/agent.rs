//! Agent forwarding: `ssh-add` on a session whose client asked for
//! `auth-agent-req@openssh.com` talks to the client's agent through an
//! `auth-agent@openssh.com` channel the server opens back to the client.
//!
//! In order, for each `ssh-add -l`:
//! 1. open an `auth-agent@openssh.com` channel on the connection (the client connects it
//!    to its agent);
//! 2. send the agent a `REQUEST_IDENTITIES` and read the `IDENTITIES_ANSWER` (russh's
//!    agent client, at most [`AGENT_TIMEOUT`]);
//! 3. close the channel and print one line per identity, as OpenSSH's `ssh-add` does.

use std::time::Duration;

use russh::keys::agent::AgentIdentity;
use russh::keys::agent::client::AgentClient;
use russh::keys::ssh_key::public::KeyData;
use russh::keys::ssh_key::{Algorithm, EcdsaCurve};
use russh::keys::{HashAlg, PublicKey};
use russh::server;

use crate::shell::{AgentKey, AgentLink, BoxFuture};

/// Longest wait for the client's agent to open the channel and answer.
pub(crate) const AGENT_TIMEOUT: Duration = Duration::from_secs(10);

/// The agent the client forwarded on one connection.
#[derive(Debug)]
pub(crate) struct ForwardedAgent {
    /// The connection's session handle, which opens channels to the client.
    pub(crate) handle: server::Handle,
}

impl AgentLink for ForwardedAgent {
    fn identities(&self) -> BoxFuture<'_, Result<Vec<AgentKey>, String>> {
        Box::pin(async move {
            let ask = async {
                let channel = self
                    .handle
                    .channel_open_agent()
                    .await
                    .map_err(|e| format!("communication with agent failed: {e}"))?;
                let mut agent = AgentClient::connect(channel.into_stream());
                // Dropping the client closes the channel.
                agent
                    .request_identities()
                    .await
                    .map_err(|e| format!("communication with agent failed: {e}"))
            };
            let identities = tokio::time::timeout(AGENT_TIMEOUT, ask)
                .await
                .map_err(|_| "communication with agent failed: timed out".to_owned())??;
            Ok(identities.iter().map(describe).collect())
        })
    }
}

/// The `ssh-add -l` and `-L` lines of one identity.
pub(crate) fn describe(identity: &AgentIdentity) -> AgentKey {
    let (data, comment, cert, public) = match identity {
        AgentIdentity::PublicKey { key, comment } => (
            key.key_data(),
            comment,
            false,
            PublicKey::new(key.key_data().clone(), comment.as_str()).to_openssh(),
        ),
        AgentIdentity::Certificate {
            certificate,
            comment,
        } => (
            certificate.public_key(),
            comment,
            true,
            certificate.to_openssh(),
        ),
    };
    let mut kind = type_name(data).to_owned();
    if cert {
        kind.push_str("-CERT");
    }
    let fingerprint = data.fingerprint(HashAlg::Sha256);
    AgentKey {
        listing: format!("{} {fingerprint} {comment} ({kind})", bits(data)),
        public: public.unwrap_or_else(|_| format!("{} {comment}", data.algorithm())),
    }
}

/// The key size `ssh-add -l` prints.
fn bits(data: &KeyData) -> u32 {
    match data.algorithm() {
        Algorithm::Rsa { .. } => data.rsa().map_or(0, |k| k.key_size()),
        Algorithm::Dsa => 1024,
        Algorithm::Ecdsa { curve } => curve_bits(curve),
        Algorithm::SkEcdsaSha2NistP256 => 256,
        _ => 256,
    }
}

/// The size of an ECDSA curve.
fn curve_bits(curve: EcdsaCurve) -> u32 {
    match curve {
        EcdsaCurve::NistP256 => 256,
        EcdsaCurve::NistP384 => 384,
        EcdsaCurve::NistP521 => 521,
    }
}

/// The key type `ssh-add -l` prints in parentheses.
fn type_name(data: &KeyData) -> &'static str {
    match data.algorithm() {
        Algorithm::Rsa { .. } => "RSA",
        Algorithm::Dsa => "DSA",
        Algorithm::Ecdsa { .. } => "ECDSA",
        Algorithm::Ed25519 => "ED25519",
        Algorithm::SkEcdsaSha2NistP256 => "ECDSA-SK",
        Algorithm::SkEd25519 => "ED25519-SK",
        _ => "UNKNOWN",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn lines_like_openssh() {
        let key = crate::keys::client_key(0);
        let identity = AgentIdentity::PublicKey {
            key: key.public_key().clone(),
            comment: "me@laptop".into(),
        };
        let described = describe(&identity);
        let fingerprint = key.public_key().fingerprint(HashAlg::Sha256).to_string();
        assert!(fingerprint.starts_with("SHA256:"));
        assert_eq!(
            described.listing,
            format!("256 {fingerprint} me@laptop (ED25519)")
        );
        assert!(
            described.public.starts_with("ssh-ed25519 AAAA")
                && described.public.ends_with(" me@laptop"),
            "{}",
            described.public
        );
    }
}

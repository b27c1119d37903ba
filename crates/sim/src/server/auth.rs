//! Which credentials a host accepts, as the [`SimHandler`] methods its russh handler asks:
//! the fleet's client key, user certificates of the configured CA
//! ([`accepts_certificate`]), and the password, with the `password` method or as the one
//! answer to keyboard-interactive's `Password: ` prompt; an `auth-fail` host accepts
//! none. A successful authentication records the user and arms the `freeze` fault.

use russh::keys::ssh_key::public::KeyData;
use russh::server::{Auth, Response};

use super::handler::SimHandler;
use crate::Fault;

impl SimHandler {
    /// Accepts exactly the sim's client key (nothing on an `auth-fail` host).
    pub(super) fn accepts_key(&self, key: &russh::keys::PublicKey) -> Auth {
        // `PublicKey ==` compares comments too: compare the key data only.
        if !self.auth_fails() && key.key_data() == &self.shared.client_key {
            Auth::Accept
        } else {
            Auth::reject()
        }
    }

    /// Accepts a user certificate of the configured CA that lets `user` in (nothing without
    /// a CA, nothing on an `auth-fail` host); see [`accepts_certificate`].
    pub(super) fn accepts_user_certificate(
        &self,
        user: &str,
        certificate: &russh::keys::Certificate,
    ) -> Auth {
        match &self.shared.user_ca {
            Some(ca) if !self.auth_fails() => {
                match accepts_certificate(ca, user, certificate, std::time::SystemTime::now()) {
                    Ok(()) => Auth::Accept,
                    Err(why) => {
                        tracing::debug!(host = %self.host.shell.name, user, "certificate refused: {why}");
                        Auth::reject()
                    }
                }
            }
            _ => Auth::reject(),
        }
    }

    /// Accepts the configured password with the `password` method (not on a host that
    /// offers keyboard-interactive only, nor on an `auth-fail` host).
    pub(super) fn accepts_password(&self, password: &str) -> Auth {
        match &self.shared.password {
            Some(expected)
                if expected == password
                    && !self.auth_fails()
                    && !self.shared.kbd_interactive_only =>
            {
                Auth::Accept
            }
            _ => Auth::reject(),
        }
    }

    /// Accepts the answers to the keyboard-interactive `Password: ` prompt when they are
    /// exactly one, the configured password (not on an `auth-fail` host).
    pub(super) fn accepts_password_answers(&self, mut answers: Response<'_>) -> Auth {
        let Some(expected) = &self.shared.password else {
            return Auth::reject();
        };
        let right = answers
            .next()
            .is_some_and(|answer| answer.as_ref() == expected.as_bytes())
            && answers.next().is_none();
        if right && !self.auth_fails() {
            Auth::Accept
        } else {
            Auth::reject()
        }
    }

    /// Whether this host rejects every authentication.
    pub(super) fn auth_fails(&self) -> bool {
        matches!(self.host.behaviour.fault, Some(Fault::AuthFail))
    }

    /// Remembers the user of a successful authentication.
    pub(super) fn authenticated(&mut self, user: &str, auth: Auth) -> Auth {
        if matches!(auth, Auth::Accept) {
            self.user = user.to_owned();
            if let Some(freeze) = &self.freeze {
                freeze.arm();
            }
        }
        auth
    }
}

/// Whether `cert` lets `user` in, trusting user certificates signed by `ca`: a user
/// certificate, signed by `ca` (and its signature valid), valid at `now`, with `user`
/// among its principals or no principals at all. Critical options are not enforced (none
/// is understood, as the sim has no `force-command` or `source-address` to honour); a
/// certificate carrying any is refused, as OpenSSH refuses unknown ones.
pub(super) fn accepts_certificate(
    ca: &KeyData,
    user: &str,
    cert: &russh::keys::Certificate,
    now: std::time::SystemTime,
) -> Result<(), &'static str> {
    use russh::keys::ssh_key::certificate::CertType;
    if cert.cert_type() != CertType::User {
        return Err("not a user certificate");
    }
    if cert.signature_key() != ca {
        return Err("not signed by the user CA");
    }
    let now = now
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let ca_fingerprint = ca.fingerprint(russh::keys::HashAlg::Sha256);
    if cert.validate_at(now, [&ca_fingerprint]).is_err() {
        return Err("bad signature, or not valid now");
    }
    let principals = cert.valid_principals();
    if !principals.is_empty() && !principals.iter().any(|p| p == user) {
        return Err("the user is not among its principals");
    }
    if !cert.critical_options().is_empty() {
        return Err("it has critical options");
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn certificate_checks() {
        use russh::keys::Certificate;
        use russh::keys::ssh_key::certificate::{Builder, CertType};
        use std::time::{Duration, SystemTime};
        let ca = crate::keys::ca_key(1);
        let user = crate::keys::client_key(0);
        let now = SystemTime::now();
        let secs = |t: SystemTime| t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        let make = |kind: CertType, principal: Option<&str>, critical: bool| {
            let mut b = Builder::new(
                [7u8; 16],
                user.public_key().key_data().clone(),
                secs(now) - 60,
                secs(now) + 3600,
            )
            .unwrap();
            b.cert_type(kind).unwrap();
            match principal {
                Some(p) => b.valid_principal(p).unwrap(),
                None => b.all_principals_valid().unwrap(),
            };
            if critical {
                b.critical_option("force-command", "true").unwrap();
            }
            b.sign(&ca).unwrap()
        };
        let ca_key = ca.public_key().key_data();
        let check = |cert: Certificate, user: &str| accepts_certificate(ca_key, user, &cert, now);
        assert_eq!(
            check(make(CertType::User, Some("alice"), false), "alice"),
            Ok(())
        );
        assert_eq!(check(make(CertType::User, None, false), "anyone"), Ok(()));
        assert!(check(make(CertType::User, Some("alice"), false), "bob").is_err());
        assert!(check(make(CertType::Host, None, false), "alice").is_err());
        assert!(check(make(CertType::User, None, true), "alice").is_err());
        let cert = make(CertType::User, None, false);
        let other_ca = crate::keys::ca_key(2);
        assert!(accepts_certificate(other_ca.public_key().key_data(), "a", &cert, now).is_err());
        let later = now + Duration::from_secs(7200);
        assert!(accepts_certificate(ca_key, "a", &cert, later).is_err());
    }
}

//! Host certificates (`SimConfig::host_ca`): what a client that offers
//! `ssh-ed25519-cert-v01@openssh.com` is shown, and what one that does not is shown.

use std::borrow::Cow;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use fleetsh_sim::testing;
use russh::keys::ssh_key::certificate::CertType;
use russh::keys::{Algorithm, Certificate, HashAlg};

use super::*;

/// What the server presented.
#[derive(Debug)]
enum Seen {
    Cert(Box<Certificate>),
    Plain(KeyData),
}

/// Accepts any host key and keeps what the server presented.
struct Recorder {
    seen: Arc<Mutex<Option<Seen>>>,
}

impl client::Handler for Recorder {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        *self.seen.lock().unwrap() = Some(match key {
            PublicKeyOrCertificate::Certificate(cert) => Seen::Cert(Box::new(cert.clone())),
            PublicKeyOrCertificate::PublicKey { key, .. } => Seen::Plain(key.key_data().clone()),
        });
        Ok(true)
    }
}

/// Connects to host `index`, offering host certificates or not, logs in with the
/// fleet's client key, runs `hostname`, and returns what the server presented.
async fn presented(fleet: &SimFleet, index: usize, offer_certs: bool) -> Seen {
    let mut config = client::Config {
        nodelay: true,
        inactivity_timeout: Some(Duration::from_secs(30)),
        ..Default::default()
    };
    if offer_certs {
        config.preferred.host_key_certificates = Cow::Borrowed(&[Algorithm::Ed25519]);
    }
    let seen = Arc::new(Mutex::new(None));
    let mut session = client::connect(
        Arc::new(config),
        fleet.hosts()[index].addr,
        Recorder { seen: seen.clone() },
    )
    .await
    .unwrap();
    authenticate(fleet, &mut session).await;
    let out = exec(&session, "hostname", usize::MAX).await;
    assert_eq!(
        out.stdout,
        format!("{}\n", fleet.hosts()[index].name).as_bytes()
    );
    let _ = session
        .disconnect(Disconnect::ByApplication, "", "en")
        .await;
    seen.lock()
        .unwrap()
        .take()
        .expect("check_server_key was called")
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn expect_cert(seen: Seen) -> Certificate {
    match seen {
        Seen::Cert(cert) => *cert,
        other => panic!("expected a certificate, got {other:?}"),
    }
}

fn expect_plain(seen: Seen) -> KeyData {
    match seen {
        Seen::Plain(key) => key,
        other => panic!("expected a plain key, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_presented_signed_by_the_ca_with_the_principals() {
    let ca = testing::ca_key(5);
    let (_dir, fleet) = start_with(|c| {
        c.count = 3;
        c.host_ca = Some(ca.clone());
    });
    let started = unix_now();
    for index in [0, 2] {
        let cert = expect_cert(presented(&fleet, index, true).await);
        let host = &fleet.hosts()[index];
        assert_eq!(cert.cert_type(), CertType::Host);
        assert_eq!(cert.key_id(), "fleetsh-sim-host");
        assert_eq!(
            cert.public_key(),
            fleet.host_public_key(index).unwrap().key_data()
        );
        assert_eq!(cert.signature_key(), ca.public_key().key_data());
        assert_eq!(
            cert.valid_principals(),
            [host.addr.ip().to_string(), host.name.clone()]
        );
        // Signed by the CA (signature checked), and valid now.
        cert.validate_at(started, &[ca.public_key().fingerprint(HashAlg::Sha256)])
            .unwrap();
        let other_ca = testing::ca_key(6).public_key().fingerprint(HashAlg::Sha256);
        assert!(cert.validate_at(started, &[other_ca]).is_err());
        // From an hour ago, for ten years.
        assert!(cert.valid_after().abs_diff(started - 3600) <= 5);
        let ten_years = 10 * 365 * 24 * 3600;
        assert!(cert.valid_before() >= started + ten_years);
        assert!(cert.valid_before() <= started + ten_years + 4 * 24 * 3600);
    }
    // The known_hosts line that trusts the CA.
    let text = std::fs::read_to_string(fleet.known_hosts_ca_file()).unwrap();
    let ca_line = russh::keys::PublicKey::new(ca.public_key().key_data().clone(), "")
        .to_openssh()
        .unwrap();
    assert_eq!(text, format!("@cert-authority * {ca_line}\n"));
    // known_hosts still lists the plain keys.
    assert_eq!(known_hosts(&fleet).len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_not_offering_certificates_gets_the_plain_key() {
    let (_dir, fleet) = start_with(|c| {
        c.count = 2;
        c.host_ca = Some(testing::ca_key(5));
    });
    let key = expect_plain(presented(&fleet, 1, false).await);
    assert_eq!(&key, fleet.host_public_key(1).unwrap().key_data());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_host_ca_plain_keys_and_no_known_hosts_ca() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    // A stale file from an earlier fleet with a CA is removed.
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(state.join("known_hosts_ca"), "@cert-authority * stale\n").unwrap();
    let fleet = SimFleet::start(SimConfig {
        count: 2,
        port: 0,
        state_dir: state.clone(),
        ..SimConfig::default()
    })
    .unwrap();
    assert_eq!(fleet.known_hosts_ca_file(), state.join("known_hosts_ca"));
    assert!(!fleet.known_hosts_ca_file().exists());
    // Offering certificate algorithms changes nothing.
    let key = expect_plain(presented(&fleet, 0, true).await);
    assert_eq!(&key, fleet.host_public_key(0).unwrap().key_data());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn override_presents_a_bad_certificate_on_one_host() {
    let ca = testing::ca_key(5);
    let rogue = testing::ca_key(9);
    let now = SystemTime::now();
    // Host 1 (seed 0): signed by another CA, expired, for another name.
    let bad = testing::make_host_cert(
        &rogue,
        &testing::host_public_key(0, 1),
        &["elsewhere"],
        now - Duration::from_secs(7200)..now - Duration::from_secs(3600),
    )
    .unwrap();
    let (_dir, fleet) = start_with(|c| {
        c.count = 3;
        c.host_ca = Some(ca.clone());
        c.host_cert_override = Some((1, bad.clone()));
    });
    assert_eq!(
        testing::host_public_key(0, 1),
        *fleet.host_public_key(1).unwrap()
    );
    let cert = expect_cert(presented(&fleet, 1, true).await);
    assert_eq!(cert, bad);
    assert_eq!(cert.signature_key(), rogue.public_key().key_data());
    assert_eq!(cert.valid_principals(), ["elsewhere".to_owned()]);
    assert!(
        cert.validate_at(unix_now(), &[ca.public_key().fingerprint(HashAlg::Sha256)])
            .is_err()
    );
    // The other hosts keep the CA's certificates.
    for index in [0, 2] {
        let cert = expect_cert(presented(&fleet, index, true).await);
        assert_eq!(cert.signature_key(), ca.public_key().key_data());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn override_without_host_ca_is_the_only_certificate() {
    let ca = testing::ca_key(5);
    let now = SystemTime::now();
    let cert = testing::make_host_cert(
        &ca,
        &testing::host_public_key(3, 0),
        &[],
        now - Duration::from_secs(60)..now + Duration::from_secs(3600),
    )
    .unwrap();
    assert!(cert.valid_principals().is_empty());
    let (_dir, fleet) = start_with(|c| {
        c.count = 2;
        c.seed = 3;
        c.host_cert_override = Some((0, cert.clone()));
    });
    assert!(!fleet.known_hosts_ca_file().exists());
    assert_eq!(expect_cert(presented(&fleet, 0, true).await), cert);
    expect_plain(presented(&fleet, 1, true).await);
}

#[test]
fn override_must_certify_the_host_key_of_a_fleet_host() {
    let ca = testing::ca_key(5);
    let now = SystemTime::now();
    let valid = now - Duration::from_secs(60)..now + Duration::from_secs(3600);
    let of_host_1 =
        testing::make_host_cert(&ca, &testing::host_public_key(0, 1), &[], valid).unwrap();
    for (index, count) in [(0, 2), (1, 1)] {
        let dir = tempfile::tempdir().unwrap();
        let started = SimFleet::start(SimConfig {
            count,
            port: 0,
            state_dir: dir.path().to_path_buf(),
            host_ca: Some(ca.clone()),
            host_cert_override: Some((index, of_host_1.clone())),
            ..SimConfig::default()
        });
        match started {
            Err(SimError::BadHostCert { index: i, .. }) => assert_eq!(i, index),
            other => panic!("expected BadHostCert, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostkey_mismatch_host_presents_no_certificate() {
    let (_dir, fleet) = start_with(|c| {
        c.count = 2;
        c.host_ca = Some(testing::ca_key(5));
        c.faults = vec![(Fault::HostkeyMismatch, 50.0)];
    });
    let bad = (0..2)
        .find(|&i| fleet.fault_of(i) == Some(&Fault::HostkeyMismatch))
        .unwrap();
    let key = expect_plain(presented(&fleet, bad, true).await);
    assert_ne!(&key, fleet.host_public_key(bad).unwrap().key_data());
    expect_cert(presented(&fleet, 1 - bad, true).await);
}

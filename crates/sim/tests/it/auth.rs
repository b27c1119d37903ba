//! Authentication methods beyond the client key: keyboard-interactive (and the
//! keyboard-interactive-only mode of PAM servers).

use russh::MethodKind;
use russh::client::KeyboardInteractiveAuthResponse as Kbd;

use super::*;

async fn connect_to(fleet: &SimFleet, index: usize) -> client::Handle<Client> {
    let expected = fleet.host_public_key(index).unwrap().key_data().clone();
    connect(fleet.hosts()[index].addr, expected).await
}

/// Starts keyboard-interactive and checks the one `Password: ` prompt, echo off.
async fn password_prompt(session: &mut client::Handle<Client>, user: &str) {
    match session
        .authenticate_keyboard_interactive_start(user, None)
        .await
        .unwrap()
    {
        Kbd::InfoRequest { prompts, .. } => {
            assert_eq!(prompts.len(), 1);
            assert_eq!(prompts[0].prompt, "Password: ");
            assert!(!prompts[0].echo);
        }
        other => panic!("expected a prompt, got {other:?}"),
    }
}

mod keyboard_interactive {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn right_and_wrong_answers() {
        let (_dir, fleet) = start_with(|c| {
            c.count = 2;
            c.password = Some("s3cret".into());
        });
        let mut session = connect_to(&fleet, 1).await;
        password_prompt(&mut session, "bob").await;
        match session
            .authenticate_keyboard_interactive_respond(vec!["wrong".into()])
            .await
            .unwrap()
        {
            Kbd::Failure {
                remaining_methods, ..
            } => {
                assert!(remaining_methods.contains(&MethodKind::KeyboardInteractive));
            }
            other => panic!("a wrong answer was not refused: {other:?}"),
        }
        // No answer at all, or two, fail too.
        password_prompt(&mut session, "bob").await;
        let reply = session
            .authenticate_keyboard_interactive_respond(vec![])
            .await
            .unwrap();
        assert!(matches!(reply, Kbd::Failure { .. }), "{reply:?}");
        password_prompt(&mut session, "bob").await;
        let reply = session
            .authenticate_keyboard_interactive_respond(vec!["s3cret".into(), "s3cret".into()])
            .await
            .unwrap();
        assert!(matches!(reply, Kbd::Failure { .. }), "{reply:?}");

        password_prompt(&mut session, "bob").await;
        let reply = session
            .authenticate_keyboard_interactive_respond(vec!["s3cret".into()])
            .await
            .unwrap();
        assert!(matches!(reply, Kbd::Success), "{reply:?}");
        let out = exec(&session, "whoami; hostname", usize::MAX).await;
        assert_eq!(out.stdout, b"bob\nsim00002\n");

        // The password method is offered alongside.
        let mut session = connect_to(&fleet, 0).await;
        let auth = session
            .authenticate_password("carol", "s3cret")
            .await
            .unwrap();
        assert!(auth.success());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn kbd_interactive_only_refuses_the_password_method() {
        let (_dir, fleet) = start_with(|c| {
            c.count = 1;
            c.password = Some("s3cret".into());
            c.kbd_interactive_only = true;
        });
        let mut session = connect_to(&fleet, 0).await;
        let auth = session
            .authenticate_password("root", "s3cret")
            .await
            .unwrap();
        match auth {
            client::AuthResult::Failure {
                remaining_methods, ..
            } => {
                assert!(!remaining_methods.contains(&MethodKind::Password));
                assert!(remaining_methods.contains(&MethodKind::KeyboardInteractive));
                assert!(remaining_methods.contains(&MethodKind::PublicKey));
            }
            client::AuthResult::Success => panic!("the password method was accepted"),
        }
        // The fallback a client makes: keyboard-interactive with the same password.
        password_prompt(&mut session, "root").await;
        let reply = session
            .authenticate_keyboard_interactive_respond(vec!["s3cret".into()])
            .await
            .unwrap();
        assert!(matches!(reply, Kbd::Success), "{reply:?}");
        assert_eq!(exec(&session, "echo in", 10).await.stdout, b"in\n");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn without_a_password_nothing_is_prompted() {
        let (_dir, fleet) = start_with(|c| {
            c.count = 1;
            c.kbd_interactive_only = true;
        });
        let mut session = connect_to(&fleet, 0).await;
        let reply = session
            .authenticate_keyboard_interactive_start("root", None)
            .await
            .unwrap();
        match reply {
            Kbd::Failure {
                remaining_methods, ..
            } => assert!(!remaining_methods.contains(&MethodKind::KeyboardInteractive)),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn auth_fail_hosts_refuse_the_right_answer() {
        let (_dir, fleet) = start_with(|c| {
            c.count = 1;
            c.password = Some("s3cret".into());
            c.faults = vec![(Fault::AuthFail, 100.0)];
        });
        let mut session = connect_to(&fleet, 0).await;
        password_prompt(&mut session, "root").await;
        let reply = session
            .authenticate_keyboard_interactive_respond(vec!["s3cret".into()])
            .await
            .unwrap();
        assert!(matches!(reply, Kbd::Failure { .. }), "{reply:?}");
    }
}

mod certificates {
    use std::time::SystemTime;

    use fleetsh_sim::testing;
    use russh::keys::Certificate;

    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    fn valid_now() -> std::ops::Range<SystemTime> {
        let now = SystemTime::now();
        now - Duration::from_secs(60)..now + HOUR
    }

    fn fleet_with_ca(ca_seed: u64) -> (tempfile::TempDir, SimFleet) {
        start_with(|c| {
            c.count = 2;
            c.user_ca = Some(testing::ca_key(ca_seed).public_key().clone());
        })
    }

    /// Authenticates as `user` with the fleet's client key and `cert`.
    async fn cert_auth(
        fleet: &SimFleet,
        user: &str,
        cert: Certificate,
    ) -> (bool, client::Handle<Client>) {
        let mut session = connect_to(fleet, 1).await;
        let key = russh::keys::load_secret_key(fleet.client_key_file(), None).unwrap();
        let auth = session
            .authenticate_openssh_cert(user, Arc::new(key), cert)
            .await
            .unwrap();
        (auth.success(), session)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn certificate_signed_by_the_ca_is_accepted() {
        let (_dir, fleet) = fleet_with_ca(1);
        assert!(
            !fleet.client_cert_file().exists(),
            "the fleet writes no certificate by default"
        );
        let ca = testing::ca_key(1);
        let cert = testing::make_user_cert(
            &ca,
            fleet.client_public_key(),
            &["deploy", "ops"],
            valid_now(),
        )
        .unwrap();
        // Round trip through the file a client would read.
        testing::write_cert(&cert, &fleet.client_cert_file()).unwrap();
        let text = std::fs::read_to_string(fleet.client_cert_file()).unwrap();
        assert!(
            text.starts_with("ssh-ed25519-cert-v01@openssh.com AAAA"),
            "{text}"
        );
        let cert = Certificate::read_file(&fleet.client_cert_file()).unwrap();
        assert_eq!(cert.valid_principals(), ["deploy", "ops"]);

        let (ok, session) = cert_auth(&fleet, "ops", cert).await;
        assert!(ok, "a valid certificate was refused");
        let out = exec(&session, "whoami", 100).await;
        assert_eq!(out.stdout, b"ops\n");

        // No principals: any user.
        let any =
            testing::make_user_cert(&ca, fleet.client_public_key(), &[], valid_now()).unwrap();
        assert!(cert_auth(&fleet, "whoever", any).await.0);
        // The plain client key still works alongside.
        drop(login(&fleet, fleet.hosts()[0].addr).await);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn certificates_refused() {
        let (_dir, fleet) = fleet_with_ca(1);
        let ca = testing::ca_key(1);
        let user_key = fleet.client_public_key();
        let now = SystemTime::now();

        let wrong_ca =
            testing::make_user_cert(&testing::ca_key(2), user_key, &["root"], valid_now()).unwrap();
        assert!(!cert_auth(&fleet, "root", wrong_ca).await.0, "wrong CA");

        let expired =
            testing::make_user_cert(&ca, user_key, &["root"], now - 2 * HOUR..now - HOUR).unwrap();
        assert!(!cert_auth(&fleet, "root", expired).await.0, "expired");

        let not_yet =
            testing::make_user_cert(&ca, user_key, &["root"], now + HOUR..now + 2 * HOUR).unwrap();
        assert!(!cert_auth(&fleet, "root", not_yet).await.0, "not yet valid");

        let other_user = testing::make_user_cert(&ca, user_key, &["alice"], valid_now()).unwrap();
        assert!(
            !cert_auth(&fleet, "root", other_user).await.0,
            "wrong principal"
        );

        // A certificate of another key: the request's signature does not match it.
        let stranger = testing::ca_key(99);
        let foreign =
            testing::make_user_cert(&ca, stranger.public_key(), &["root"], valid_now()).unwrap();
        let mut session = connect_to(&fleet, 1).await;
        let key = russh::keys::load_secret_key(fleet.client_key_file(), None).unwrap();
        let auth = session
            .authenticate_openssh_cert("root", Arc::new(key), foreign)
            .await;
        assert!(
            !auth.is_ok_and(|a| a.success()),
            "certificate of another key"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn without_a_ca_certificates_are_refused() {
        let (_dir, fleet) = start_with(|c| {
            c.count = 2;
        });
        let cert = testing::make_user_cert(
            &testing::ca_key(1),
            fleet.client_public_key(),
            &[],
            valid_now(),
        )
        .unwrap();
        assert!(!cert_auth(&fleet, "root", cert).await.0);
    }

    #[test]
    fn bad_validity_period_is_an_error() {
        let now = SystemTime::now();
        let err = testing::make_user_cert(
            &testing::ca_key(1),
            testing::ca_key(2).public_key(),
            &[],
            now + HOUR..now,
        )
        .unwrap_err();
        assert!(matches!(err, SimError::Cert { .. }), "{err:?}");
    }
}

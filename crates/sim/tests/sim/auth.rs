//! Authentication methods beyond the client key: keyboard-interactive (and the
//! keyboard-interactive-only mode of PAM servers).

use russh::MethodKind;
use russh::client::KeyboardInteractiveAuthResponse as Kbd;

use super::*;

fn start_with(config: SimConfig) -> (tempfile::TempDir, SimFleet) {
    let dir = tempfile::tempdir().unwrap();
    let fleet = SimFleet::start(SimConfig {
        port: 0,
        state_dir: dir.path().join("state"),
        ..config
    })
    .unwrap();
    (dir, fleet)
}

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
        let (_dir, fleet) = start_with(SimConfig {
            count: 2,
            password: Some("s3cret".into()),
            ..SimConfig::default()
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
        let (_dir, fleet) = start_with(SimConfig {
            count: 1,
            password: Some("s3cret".into()),
            kbd_interactive_only: true,
            ..SimConfig::default()
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
        let (_dir, fleet) = start_with(SimConfig {
            count: 1,
            kbd_interactive_only: true,
            ..SimConfig::default()
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
        let (_dir, fleet) = start_with(SimConfig {
            count: 1,
            password: Some("s3cret".into()),
            faults: vec![(Fault::AuthFail, 100.0)],
            ..SimConfig::default()
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

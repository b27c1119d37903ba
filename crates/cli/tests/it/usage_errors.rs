//! Bad input: each usage error names what was wrong, with exit status 2.

use super::*;

fn usage_error(args: &[&str], needle: &str) {
    let out = fleetsh(args);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{args:?}: {}",
        text(&out.stderr)
    );
    let err = text(&out.stderr);
    assert!(
        err.contains(needle),
        "{args:?}: expected {needle:?} in {err}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn bad_host_spec_names_it() {
    usage_error(&["run", "-w", "web[1-", "--", "true"], "web[1-");
    usage_error(&["run", "-w", "web[5-1]", "--", "true"], "5-1");
    usage_error(&["run", "-w", "h:99999", "--", "true"], "99999");
}

#[test]
fn missing_hosts_file_names_it() {
    usage_error(
        &["run", "-H", "/nonexistent/hosts", "--", "true"],
        "/nonexistent/hosts",
    );
}

#[test]
fn bad_config_names_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "fanout = 10\nfanuot = 3\n").unwrap();
    let out = fleetsh(&[
        "run",
        "-w",
        "h",
        "--config",
        cfg.to_str().unwrap(),
        "--",
        "true",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("bad.toml") && err.contains("fanuot"), "{err}");
}

#[test]
fn missing_key_file_names_it() {
    usage_error(
        &["run", "-w", "h", "-i", "/nonexistent/id_x", "--", "true"],
        "/nonexistent/id_x",
    );
}

#[test]
fn bad_flags() {
    usage_error(
        &["run", "-w", "h", "--host-key-check", "maybe", "--", "true"],
        "maybe",
    );
    usage_error(
        &["run", "-w", "h", "-t", "0", "--", "true"],
        "connect-timeout",
    );
    usage_error(&["run", "-w", "h", "-t", "soon", "--", "true"], "soon");
    usage_error(&["run", "-w", "h", "-f", "0", "--", "true"], "0");
    usage_error(&["run", "--", "true"], "required");
    usage_error(&["run", "-w", "h"], "COMMAND");
}

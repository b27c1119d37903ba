//! `fleetsh put` and `fleetsh get` against a simulated fleet (each host's files live under
//! `STATE/root/simNNNNN/`): round trips, per-host download directories, bad input, hostile
//! servers and cut connections.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::*;

fn root(sim: &SimProcess, index: usize) -> PathBuf {
    sim.dir
        .path()
        .join("root")
        .join(format!("sim{:05}", index + 1))
}

fn bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 8) as u8)
        .collect()
}

fn transfer(sim: &SimProcess, verb: &str, extra: &[&str]) -> Output {
    let mut owned = Vec::new();
    let mut args = vec![verb, "-H"];
    let hosts = sim.path("hosts");
    args.push(&hosts);
    args.extend(sim.args(&mut owned));
    args.extend(["-t", "60", "-o", "json"]);
    args.extend(extra);
    fleetsh(&args)
}

/// The only entries of `dir`.
fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn put_then_get_round_trip_on_a_hundred_hosts() {
    let sim = SimProcess::start(100, "127.40.0.1");
    let local = tempfile::tempdir().unwrap();
    let tree = local.path().join("release");
    std::fs::create_dir_all(tree.join("bin")).unwrap();
    let big = bytes(1024 * 1024 + 3, 1);
    std::fs::write(tree.join("data.bin"), &big).unwrap();
    std::fs::write(tree.join("bin/tool"), b"#!/bin/sh\n").unwrap();
    std::fs::set_permissions(
        tree.join("bin/tool"),
        std::fs::Permissions::from_mode(0o751),
    )
    .unwrap();

    let out = transfer(&sim, "put", &["-r", "-p", tree.to_str().unwrap(), "/app"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 100);
    for v in &lines {
        assert_eq!(v["error"], Value::Null, "{v}");
        assert_eq!(v["files"], 2, "{v}");
        assert_eq!(v["bytes"], (big.len() + 10) as u64, "{v}");
        assert_eq!(v["exit_code"], Value::Null);
    }
    let err = text(&out.stderr);
    assert!(
        err.contains("ok: 100") && err.contains("transferred 200 files"),
        "{err}"
    );
    for i in [0, 42, 99] {
        let r = root(&sim, i);
        assert_eq!(std::fs::read(r.join("app/data.bin")).unwrap(), big);
        let mode = std::fs::metadata(r.join("app/bin/tool"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o751);
        assert_eq!(
            entries(&r.join("app")),
            ["bin", "data.bin"],
            "no temporary file left"
        );
    }

    // One host's copy changes: `get` keeps every host's files apart.
    std::fs::write(root(&sim, 2).join("app/data.bin"), b"changed on host 3").unwrap();
    let back = tempfile::tempdir().unwrap();
    let out = transfer(&sim, "get", &["-r", "/app", back.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let hosts = std::fs::read_to_string(sim.path("hosts")).unwrap();
    let names: Vec<&str> = hosts.lines().collect();
    assert_eq!(entries(back.path()).len(), 100, "one directory per host");
    for (i, name) in names.iter().enumerate() {
        let got = std::fs::read(back.path().join(name).join("app/data.bin")).unwrap();
        if i == 2 {
            assert_eq!(got, b"changed on host 3");
        } else {
            assert!(got == big, "host {name}: wrong content");
        }
        assert_eq!(
            std::fs::read(back.path().join(name).join("app/bin/tool")).unwrap(),
            b"#!/bin/sh\n"
        );
    }
}

#[test]
fn bad_transfer_input_is_named_before_connecting() {
    let local = tempfile::tempdir().unwrap();
    let missing = local.path().join("no-such-file");
    let out = fleetsh(&[
        "put",
        "-w",
        "127.0.0.1:1",
        missing.to_str().unwrap(),
        "/tmp/",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("no-such-file"),
        "{}",
        text(&out.stderr)
    );

    let out = fleetsh(&[
        "put",
        "-w",
        "127.0.0.1:1",
        local.path().to_str().unwrap(),
        "/tmp/",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("use -r"),
        "{}",
        text(&out.stderr)
    );

    // REMOTE and LOCALDIR are both required.
    let out = fleetsh(&["get", "-w", "127.0.0.1:1", "/etc/hostname"]);
    assert_eq!(out.status.code(), Some(2));

    // A local directory that is a file.
    let file = local.path().join("f");
    std::fs::write(&file, b"").unwrap();
    let out = fleetsh(&["get", "-w", "127.0.0.1:1", "/x", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains(file.to_str().unwrap()));
}

#[test]
fn hostile_names_never_escape_the_download_directory() {
    let sim = SimProcess::start_full(4, "127.41.0.1", &[], &["--fault", "sftp-evil=100"]);
    let base = tempfile::tempdir().unwrap();
    let down = base.path().join("down");
    let out = transfer(&sim, "get", &["-r", "/", down.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    for v in json_lines(&out) {
        assert_eq!(v["error"]["kind"], "transfer", "{v}");
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(msg.contains("unsafe name"), "{msg}");
    }
    // Only the download directory exists beside it; inside it only host directories.
    assert_eq!(entries(base.path()), ["down"]);
    let hosts = std::fs::read_to_string(sim.path("hosts")).unwrap();
    let mut expected: Vec<String> = hosts.lines().map(str::to_string).collect();
    expected.sort();
    assert_eq!(entries(&down), expected);
    assert!(!Path::new("/etc/evil").exists());
}

#[test]
fn a_cut_connection_leaves_no_partial_target() {
    let sim = SimProcess::start_full(3, "127.42.0.1", &[], &["--fault", "sftp-cut:300000=100"]);
    let local = tempfile::tempdir().unwrap();
    let src = local.path().join("payload");
    std::fs::write(&src, bytes(2 * 1024 * 1024, 7)).unwrap();
    let out = transfer(&sim, "put", &[src.to_str().unwrap(), "/payload"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    for (i, v) in json_lines(&out).iter().enumerate() {
        assert_eq!(v["error"]["kind"], "disconnected", "{v}");
        assert_eq!(v["files"], 0);
        assert!(v["bytes"].as_u64().unwrap() <= 2 * 1024 * 1024);
        let r = root(&sim, i);
        assert!(!r.join("payload").exists(), "no target on host {i}");
    }
}

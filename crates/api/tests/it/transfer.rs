//! File transfers (SFTP put and get): round trips with content, modes and times checked,
//! interrupted uploads, and servers that send hostile names. Against OpenSSH's sftp-server
//! (the `openssh` module's sshd: four loopback addresses of one machine, so "remote" paths are
//! local paths the test can inspect) and against the simulated fleet (each host's files live
//! under [`SimFleet::host_root`]).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use fleetsh::{ErrorKind, Event, GetPlan, HostTarget, Job, PutPlan};

use crate::openssh::{ADDRS, sshd};

/// Deterministic bytes that differ at every offset (a shifted copy would not match).
pub(crate) fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn limits() -> Job {
    let mut j = Job::new("");
    j.connect_timeout = Duration::from_secs(30);
    j.command_timeout = Some(Duration::from_secs(120));
    j
}

fn write_mode(path: &Path, data: &[u8], mode: u32) {
    std::fs::write(path, data).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn set_mtime(path: &Path, secs: u64) {
    let t = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
    std::fs::File::options()
        .write(true)
        .open(path)
        .or_else(|_| std::fs::File::open(path))
        .unwrap()
        .set_times(std::fs::FileTimes::new().set_modified(t).set_accessed(t))
        .unwrap();
}

/// A local tree with files of several sizes (empty, sub-chunk, many chunks, not a chunk
/// multiple), modes and old modification times.
fn make_tree(root: &Path) -> Vec<(&'static str, Vec<u8>, u32)> {
    let files: Vec<(&'static str, Vec<u8>, u32)> = vec![
        ("big.bin", pattern(3 * 1024 * 1024 + 7, 1), 0o644),
        ("empty", Vec::new(), 0o600),
        ("run.sh", b"#!/bin/sh\necho hi\n".to_vec(), 0o755),
        ("sub/notes.txt", pattern(1000, 2), 0o640),
        ("sub/deeper/c.dat", pattern(300 * 1024, 3), 0o604),
    ];
    std::fs::create_dir_all(root.join("sub/deeper")).unwrap();
    for (rel, data, mode) in &files {
        let p = root.join(rel);
        write_mode(&p, data, *mode);
        set_mtime(&p, 1_500_000_000);
    }
    std::fs::set_permissions(root.join("sub"), std::fs::Permissions::from_mode(0o750)).unwrap();
    files
}

fn assert_tree(root: &Path, files: &[(&'static str, Vec<u8>, u32)], preserved: bool) {
    for (rel, data, mode) in files {
        let p = root.join(rel);
        let got = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert!(
            got == *data,
            "{}: {} bytes, expected {} with the same content",
            p.display(),
            got.len(),
            data.len()
        );
        let meta = std::fs::metadata(&p).unwrap();
        assert_eq!(meta.mode() & 0o777, *mode, "mode of {}", p.display());
        if preserved {
            assert_eq!(meta.mtime(), 1_500_000_000, "mtime of {}", p.display());
        }
    }
}

/// No temporary file (`.NAME.fleetsh-*.tmp`) anywhere under `root`.
pub(crate) fn assert_no_tmp(root: &Path) {
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            assert!(
                !name.contains(".fleetsh-"),
                "temporary file left: {}",
                e.path().display()
            );
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                stack.push(e.path());
            }
        }
    }
}

#[test]
fn openssh_put_then_get_round_trip_with_modes_and_times() {
    let sshd = sshd();
    let local = tempfile::tempdir().unwrap();
    let tree = local.path().join("tree");
    let files = make_tree(&tree);
    let remote_base = tempfile::tempdir().unwrap();
    let remote = remote_base.path().join("deployed");
    let engine = sshd.engine(1).build().unwrap();

    // `put -r -p tree REMOTE` with REMOTE missing: REMOTE becomes the copy of tree.
    let plan = PutPlan::from_local(
        std::slice::from_ref(&tree),
        remote.to_str().unwrap(),
        true,
        true,
    )
    .unwrap();
    let one = vec![HostTarget::new(ADDRS[0])];
    let report = engine.copy_to(one.clone(), plan, &limits()).unwrap().join();
    let r = &report.results[0];
    sshd.assert_ok(r);
    let stats = r.transfer.expect("transfer counts");
    assert_eq!(stats.files, files.len() as u64);
    let total: usize = files.iter().map(|f| f.1.len()).sum();
    assert_eq!(stats.bytes, total as u64);
    assert_tree(&remote, &files, true);
    assert_eq!(
        std::fs::metadata(remote.join("sub")).unwrap().mode() & 0o777,
        0o750
    );
    assert_no_tmp(remote_base.path());

    // `get -r -p REMOTE LOCALDIR` from all four addresses: one directory per host.
    let back = tempfile::tempdir().unwrap();
    let plan = GetPlan::new(
        vec![remote.to_str().unwrap().to_string()],
        back.path().to_path_buf(),
        true,
        true,
    )
    .unwrap();
    let report = engine
        .copy_from(sshd.targets(), plan, &limits())
        .unwrap()
        .join();
    for (i, r) in report.results.iter().enumerate() {
        sshd.assert_ok(r);
        assert_eq!(r.transfer.unwrap().bytes, total as u64);
        assert_tree(&back.path().join(ADDRS[i]).join("deployed"), &files, true);
    }
    assert_no_tmp(back.path());
}

#[test]
fn openssh_put_one_file_to_every_host_into_a_directory_and_onto_a_name() {
    let sshd = sshd();
    let local = tempfile::tempdir().unwrap();
    let src = local.path().join("app.conf");
    let data = pattern(70_000, 9);
    write_mode(&src, &data, 0o640);
    let remote = tempfile::tempdir().unwrap();
    let engine = sshd.engine(2).build().unwrap();

    // Into an existing directory (trailing slash): REMOTE/app.conf. Four hosts write the same
    // path: each renames a complete file into place, so the result is whole.
    let dir = format!("{}/", remote.path().display());
    let plan = PutPlan::from_local(std::slice::from_ref(&src), &dir, false, false).unwrap();
    let report = engine
        .copy_to(sshd.targets(), plan, &limits())
        .unwrap()
        .join();
    for r in &report.results {
        sshd.assert_ok(r);
    }
    assert_eq!(std::fs::read(remote.path().join("app.conf")).unwrap(), data);
    assert_eq!(
        std::fs::metadata(remote.path().join("app.conf"))
            .unwrap()
            .mode()
            & 0o777,
        0o640
    );

    // Onto a new name, replacing an existing file.
    let target = remote.path().join("renamed.conf");
    std::fs::write(&target, b"old").unwrap();
    let plan = PutPlan::from_local(
        std::slice::from_ref(&src),
        target.to_str().unwrap(),
        false,
        false,
    )
    .unwrap();
    let report = engine
        .copy_to(vec![HostTarget::new(ADDRS[1])], plan, &limits())
        .unwrap()
        .join();
    sshd.assert_ok(&report.results[0]);
    assert_eq!(std::fs::read(&target).unwrap(), data);
    assert_no_tmp(remote.path());

    // A missing directory is a clear transfer error naming it.
    let missing = format!("{}/nope/", remote.path().display());
    let plan = PutPlan::from_local(std::slice::from_ref(&src), &missing, false, false).unwrap();
    let report = engine
        .copy_to(vec![HostTarget::new(ADDRS[2])], plan, &limits())
        .unwrap()
        .join();
    let e = report.results[0].error.as_ref().expect("an error");
    assert_eq!(e.kind, ErrorKind::Transfer, "{e:?}");
    assert!(
        e.message.contains("nope") && e.message.contains("not a directory"),
        "{e:?}"
    );
}

#[test]
fn openssh_cancelled_upload_leaves_the_old_target_and_no_temporary_file() {
    let sshd = sshd();
    let local = tempfile::tempdir().unwrap();
    let src = local.path().join("image.bin");
    std::fs::write(&src, pattern(128 * 1024 * 1024, 4)).unwrap();
    let remote = tempfile::tempdir().unwrap();
    let target = remote.path().join("image.bin");
    std::fs::write(&target, b"previous version").unwrap();
    let engine = sshd.engine(1).build().unwrap();
    let plan = PutPlan::from_local(
        std::slice::from_ref(&src),
        target.to_str().unwrap(),
        false,
        false,
    )
    .unwrap();
    let mut run = engine
        .copy_to(vec![HostTarget::new(ADDRS[0])], plan, &limits())
        .unwrap();
    let mut result = None;
    let mut moved = 0u64;
    while let Some(ev) = run.next_event() {
        match ev {
            Event::Transferred { bytes, .. } => {
                moved += bytes;
                // Some data is on its way: interrupt.
                run.cancel();
            }
            Event::Finished(r) => result = Some(r),
            _ => {}
        }
    }
    let r = result.expect("one result");
    let e = r.error.as_ref().expect("cancelled, not finished");
    assert_eq!(e.kind, ErrorKind::Cancelled, "{r:?}");
    assert!(moved > 0);
    assert_eq!(r.transfer.unwrap().files, 0);
    assert_eq!(std::fs::read(&target).unwrap(), b"previous version");
    assert_no_tmp(remote.path());
}

#[test]
fn openssh_get_follows_no_symlinked_directory_and_refuses_a_symlinked_local_dir() {
    let sshd = sshd();
    let remote = tempfile::tempdir().unwrap();
    let tree = remote.path().join("logs");
    std::fs::create_dir(&tree).unwrap();
    std::fs::write(tree.join("app.log"), b"line\n").unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret"), b"not for you").unwrap();
    // A link to a directory elsewhere (not followed) and a link to a file (copied as a file).
    std::os::unix::fs::symlink(outside.path(), tree.join("elsewhere")).unwrap();
    std::os::unix::fs::symlink(tree.join("app.log"), tree.join("current.log")).unwrap();
    let engine = sshd.engine(1).build().unwrap();
    let back = tempfile::tempdir().unwrap();
    let plan = GetPlan::new(
        vec![tree.to_str().unwrap().to_string()],
        back.path().to_path_buf(),
        true,
        false,
    )
    .unwrap();
    let report = engine
        .copy_from(vec![HostTarget::new(ADDRS[0])], plan.clone(), &limits())
        .unwrap()
        .join();
    sshd.assert_ok(&report.results[0]);
    let got = back.path().join(ADDRS[0]).join("logs");
    assert_eq!(std::fs::read(got.join("app.log")).unwrap(), b"line\n");
    assert_eq!(std::fs::read(got.join("current.log")).unwrap(), b"line\n");
    assert!(!got.join("elsewhere").exists());
    assert_eq!(report.results[0].transfer.unwrap().files, 2);

    // The host's download directory is a symlink planted elsewhere: refused, nothing written.
    let back = tempfile::tempdir().unwrap();
    let decoy = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(decoy.path(), back.path().join(ADDRS[1])).unwrap();
    let plan = GetPlan {
        local_dir: back.path().to_path_buf(),
        ..plan
    };
    let report = engine
        .copy_from(vec![HostTarget::new(ADDRS[1])], plan, &limits())
        .unwrap()
        .join();
    let e = report.results[0].error.as_ref().expect("refused");
    assert_eq!(e.kind, ErrorKind::Transfer);
    assert!(e.message.contains("symlink"), "{e:?}");
    assert_eq!(std::fs::read_dir(decoy.path()).unwrap().count(), 0);
}

#[test]
fn sim_put_and_get_on_three_hundred_hosts_with_one_and_three_shards() {
    let f = crate::engine::fleet(300, 5, None);
    let local = tempfile::tempdir().unwrap();
    let src = local.path().join("blob");
    let data = pattern(256 * 1024 + 11, 6);
    std::fs::write(&src, &data).unwrap();
    for shards in [1, 3] {
        let engine = f.engine(shards).build().unwrap();
        let remote = format!("/blob-{shards}");
        let plan = PutPlan::from_local(std::slice::from_ref(&src), &remote, false, false).unwrap();
        let mut run = engine.copy_to(f.targets(), plan, &limits()).unwrap();
        // Progress events add up to the results' counts.
        let (mut files, mut bytes, mut results) = (0u64, 0u64, Vec::new());
        while let Some(ev) = run.next_event() {
            match ev {
                Event::Transferred {
                    files: f, bytes: b, ..
                } => {
                    files += f;
                    bytes += b;
                }
                Event::Finished(r) => results.push(r),
                _ => {}
            }
        }
        assert_eq!(results.len(), 300);
        for r in &results {
            assert!(r.is_ok(), "{r:?}");
            assert_eq!(r.transfer.unwrap().bytes, data.len() as u64);
        }
        assert_eq!(files, 300);
        assert_eq!(bytes, 300 * data.len() as u64);
        for i in 0..300 {
            let on_host = f.sim.host_root(i).join(&remote[1..]);
            let got =
                std::fs::read(&on_host).unwrap_or_else(|e| panic!("{}: {e}", on_host.display()));
            assert!(got == data, "host {i}: content differs");
        }

        // Back again, one directory per host.
        let back = tempfile::tempdir().unwrap();
        let plan = GetPlan::new(
            vec![remote.clone()],
            back.path().to_path_buf(),
            false,
            false,
        )
        .unwrap();
        let report = engine
            .copy_from(f.targets(), plan, &limits())
            .unwrap()
            .join();
        assert!(report.all_ok(), "{:?}", report.outcome_counts());
        for (i, t) in f.targets().iter().enumerate() {
            let got = std::fs::read(back.path().join(t.to_string()).join(&remote[1..])).unwrap();
            assert!(got == data, "host {i}: downloaded content differs");
        }
        assert_no_tmp(back.path());
    }
}

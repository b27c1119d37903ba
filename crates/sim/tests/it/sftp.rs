//! The `sftp` subsystem, driven by russh-sftp's client: files, directories, attributes,
//! renames, confinement to the host's root, and the `sftp-evil` / `sftp-cut` faults.

use std::os::unix::fs::PermissionsExt;
use std::time::UNIX_EPOCH;

use russh_sftp::client::error::Error as SftpError;
use russh_sftp::client::{RawSftpSession, SftpSession};
use russh_sftp::protocol::{FileAttributes, OpenFlags, Packet, StatusCode};
use tokio::io::AsyncWriteExt;

use super::*;

/// Opens a session channel and starts the `sftp` subsystem on it.
async fn sftp_channel(session: &client::Handle<Client>) -> russh::Channel<client::Msg> {
    let mut channel = session.channel_open_session().await.unwrap();
    channel.request_subsystem(true, "sftp").await.unwrap();
    loop {
        match channel.wait().await {
            Some(ChannelMsg::Success) => return channel,
            Some(ChannelMsg::Failure) => panic!("the sftp subsystem was refused"),
            Some(_) => {}
            None => panic!("the channel closed before the subsystem reply"),
        }
    }
}

async fn open_sftp(session: &client::Handle<Client>) -> SftpSession {
    SftpSession::new(sftp_channel(session).await.into_stream())
        .await
        .unwrap()
}

async fn raw_sftp(session: &client::Handle<Client>) -> RawSftpSession {
    let raw = RawSftpSession::new(sftp_channel(session).await.into_stream());
    let version = raw.init().await.unwrap();
    assert_eq!(version.version, 3);
    assert_eq!(
        version.extensions.get("posix-rename@openssh.com"),
        Some(&"1".to_owned())
    );
    raw
}

/// Creates (or truncates) `path` and writes `data` into it.
async fn put(sftp: &SftpSession, path: &str, data: &[u8]) {
    let mut file = sftp.create(path).await.unwrap();
    file.write_all(data).await.unwrap();
    file.shutdown().await.unwrap();
}

/// The status code of a failed SFTP request.
fn code<T>(result: Result<T, SftpError>) -> StatusCode {
    match result {
        Err(SftpError::Status(status)) => status.status_code,
        Err(other) => panic!("expected an SFTP status, got {other:?}"),
        Ok(_) => panic!("expected an SFTP status, got success"),
    }
}

/// The names in a directory of the host (real filesystem), sorted.
fn names(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Two SSH strings, as in a `posix-rename@openssh.com` request.
fn two_strings(a: &str, b: &str) -> Vec<u8> {
    let mut data = Vec::new();
    for s in [a, b] {
        data.extend_from_slice(&(s.len() as u32).to_be_bytes());
        data.extend_from_slice(s.as_bytes());
    }
    data
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_round_trip_and_land_in_the_host_root() {
    let (_dir, fleet) = start(2, None);
    assert!(
        !fleet.host_root(0).exists(),
        "roots are created on first use, not at start"
    );
    let session = login(&fleet, fleet.hosts()[1].addr).await;
    let sftp = open_sftp(&session).await;
    let root = fleet.host_root(1);
    assert!(root.ends_with("root/sim00002"), "{}", root.display());
    assert!(root.is_dir());

    assert_eq!(sftp.canonicalize(".").await.unwrap(), "/");
    sftp.create_dir("/dir").await.unwrap();
    let data = text(300_000); // several write and read requests
    put(&sftp, "/dir/a.txt", &data).await;
    assert_eq!(std::fs::read(root.join("dir/a.txt")).unwrap(), data);
    assert_eq!(sftp.read("dir/a.txt").await.unwrap(), data);

    let meta = sftp.metadata("/dir/a.txt").await.unwrap();
    assert_eq!(meta.len(), 300_000);
    assert!(meta.is_regular());
    assert!(sftp.metadata("/dir").await.unwrap().is_dir());
    assert_eq!(
        code(sftp.metadata("/missing").await),
        StatusCode::NoSuchFile
    );

    // Open with a mode: applied as asked.
    let attrs = FileAttributes {
        permissions: Some(0o604),
        ..FileAttributes::empty()
    };
    let mut file = sftp
        .open_with_flags_and_attributes(
            "/dir/b.txt",
            OpenFlags::CREATE | OpenFlags::WRITE | OpenFlags::EXCLUDE,
            attrs,
        )
        .await
        .unwrap();
    file.write_all(b"bee").await.unwrap();
    file.shutdown().await.unwrap();
    let real = std::fs::metadata(root.join("dir/b.txt")).unwrap();
    assert_eq!(real.permissions().mode() & 0o7777, 0o604);
    // EXCLUDE refuses an existing file.
    assert_eq!(
        code(
            sftp.open_with_flags(
                "/dir/b.txt",
                OpenFlags::CREATE | OpenFlags::WRITE | OpenFlags::EXCLUDE
            )
            .await
        ),
        StatusCode::Failure
    );
    // Append.
    let mut file = sftp
        .open_with_flags("/dir/b.txt", OpenFlags::WRITE | OpenFlags::APPEND)
        .await
        .unwrap();
    file.write_all(b"-more").await.unwrap();
    file.shutdown().await.unwrap();
    assert_eq!(sftp.read("/dir/b.txt").await.unwrap(), b"bee-more");

    // mkdir with a mode, readdir.
    let raw = raw_sftp(&session).await;
    raw.mkdir(
        "/dir/sub",
        FileAttributes {
            permissions: Some(0o750),
            ..FileAttributes::empty()
        },
    )
    .await
    .unwrap();
    let real = std::fs::metadata(root.join("dir/sub")).unwrap();
    assert_eq!(real.permissions().mode() & 0o7777, 0o750);
    let mut listed: Vec<(String, bool, u64)> = sftp
        .read_dir("/dir")
        .await
        .unwrap()
        .map(|e| (e.file_name(), e.file_type().is_dir(), e.metadata().len()))
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        [
            ("a.txt".to_owned(), false, 300_000),
            ("b.txt".to_owned(), false, 8),
            ("sub".to_owned(), true, listed[2].2),
        ]
    );

    // remove, rmdir.
    assert_eq!(code(sftp.remove_dir("/dir").await), StatusCode::Failure);
    sftp.remove_file("/dir/b.txt").await.unwrap();
    sftp.remove_dir("/dir/sub").await.unwrap();
    assert_eq!(names(&root.join("dir")), ["a.txt"]);
    assert_eq!(
        code(sftp.remove_file("/dir/b.txt").await),
        StatusCode::NoSuchFile
    );
    // The other host's root was never touched.
    assert!(!fleet.host_root(0).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readdir_lists_dots_in_batches_then_eof() {
    let (_dir, fleet) = start(1, None);
    let session = login(&fleet, fleet.hosts()[0].addr).await;
    let sftp = open_sftp(&session).await;
    sftp.create_dir("/many").await.unwrap();
    for i in 0..250 {
        std::fs::write(fleet.host_root(0).join(format!("many/f{i:03}")), b"x").unwrap();
    }
    let raw = raw_sftp(&session).await;
    let handle = raw.opendir("/many").await.unwrap().handle;
    let mut all = Vec::new();
    let mut batches = 0;
    loop {
        match raw.readdir(handle.as_str()).await {
            Ok(name) => {
                assert!(!name.files.is_empty());
                assert!(name.files.len() <= 100, "{}", name.files.len());
                batches += 1;
                all.extend(name.files);
            }
            Err(SftpError::Status(status)) => {
                assert_eq!(status.status_code, StatusCode::Eof);
                break;
            }
            Err(e) => panic!("readdir: {e}"),
        }
    }
    raw.close(handle).await.unwrap();
    assert!(batches >= 3, "{batches} batches");
    assert_eq!(all.len(), 252);
    assert_eq!(all[0].filename, ".");
    assert_eq!(all[1].filename, "..");
    assert!(all[0].attrs.is_dir() && all[1].attrs.is_dir());
    assert!(all[0].longname.starts_with('d'), "{}", all[0].longname);
    let file = all.iter().find(|f| f.filename == "f007").unwrap();
    assert!(file.longname.starts_with("-rw"), "{}", file.longname);
    assert!(file.longname.ends_with(" f007"), "{}", file.longname);
    assert_eq!(file.attrs.size, Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setstat_sets_mode_times_and_size() {
    let (_dir, fleet) = start(1, None);
    let session = login(&fleet, fleet.hosts()[0].addr).await;
    let sftp = open_sftp(&session).await;
    put(&sftp, "/f", b"0123456789").await;
    let mut meta = sftp.metadata("/f").await.unwrap();
    meta.permissions = Some(0o100_600);
    meta.mtime = Some(1_000_000_000);
    meta.atime = Some(1_000_000_100);
    meta.size = None;
    meta.uid = None;
    meta.gid = None;
    sftp.set_metadata("/f", meta).await.unwrap();
    let real = std::fs::metadata(fleet.host_root(0).join("f")).unwrap();
    assert_eq!(real.permissions().mode() & 0o7777, 0o600);
    assert_eq!(
        real.modified().unwrap().duration_since(UNIX_EPOCH).unwrap(),
        Duration::from_secs(1_000_000_000)
    );
    let seen = sftp.metadata("/f").await.unwrap();
    assert_eq!(seen.mtime, Some(1_000_000_000));
    assert_eq!(seen.atime, Some(1_000_000_100));
    assert_eq!(seen.permissions.unwrap() & 0o7777, 0o600);

    // Size truncates, through a handle too.
    sftp.set_metadata(
        "/f",
        FileAttributes {
            size: Some(4),
            ..FileAttributes::empty()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        std::fs::read(fleet.host_root(0).join("f")).unwrap(),
        b"0123"
    );
    let file = sftp.open_with_flags("/f", OpenFlags::WRITE).await.unwrap();
    file.set_metadata(FileAttributes {
        size: Some(2),
        permissions: Some(0o640),
        ..FileAttributes::empty()
    })
    .await
    .unwrap();
    let stat = file.metadata().await.unwrap();
    assert_eq!(stat.size, Some(2));
    assert_eq!(stat.permissions.unwrap() & 0o7777, 0o640);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rename_refuses_to_overwrite_but_posix_rename_does() {
    let (_dir, fleet) = start(1, None);
    let session = login(&fleet, fleet.hosts()[0].addr).await;
    let sftp = open_sftp(&session).await;
    put(&sftp, "/old", b"new content").await;
    put(&sftp, "/target", b"old content").await;
    assert_eq!(
        code(sftp.rename("/old", "/target").await),
        StatusCode::Failure
    );
    sftp.rename("/target", "/moved").await.unwrap();
    assert_eq!(names(&fleet.host_root(0)), ["moved", "old"]);

    let raw = raw_sftp(&session).await;
    let reply = raw
        .extended("posix-rename@openssh.com", two_strings("/old", "/moved"))
        .await
        .unwrap();
    assert!(
        matches!(&reply, Packet::Status(s) if s.status_code == StatusCode::Ok),
        "{reply:?}"
    );
    assert_eq!(names(&fleet.host_root(0)), ["moved"]);
    assert_eq!(sftp.read("/moved").await.unwrap(), b"new content");

    let limits = raw.limits().await.unwrap();
    assert_eq!(limits.max_packet_len, 256 * 1024);
    assert!(limits.max_write_len > 0 && limits.max_read_len > 0);
    let reply = raw
        .extended("no-such@example.com", Vec::new())
        .await
        .unwrap();
    assert!(
        matches!(&reply, Packet::Status(s) if s.status_code == StatusCode::OpUnsupported),
        "{reply:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paths_stay_inside_the_root() {
    let (dir, fleet) = start(1, None);
    let session = login(&fleet, fleet.hosts()[0].addr).await;
    let sftp = open_sftp(&session).await;
    let root = fleet.host_root(0);

    put(&sftp, "../../x", b"x").await;
    put(&sftp, "/y", b"y").await;
    sftp.create_dir("d").await.unwrap();
    put(&sftp, "d/../../../z", b"z").await;
    put(&sftp, "/d/./../d//w", b"w").await;
    assert_eq!(names(&root), ["d", "x", "y", "z"]);
    assert_eq!(names(&root.join("d")), ["w"]);
    assert_eq!(names(&fleet.state_dir().join("root")), ["sim00001"]);
    assert_eq!(sftp.canonicalize("../..").await.unwrap(), "/");
    assert_eq!(sftp.canonicalize("d/../../d/w").await.unwrap(), "/d/w");
    assert_eq!(
        code(sftp.remove_dir("/").await),
        StatusCode::PermissionDenied
    );

    // A symlink on the host pointing outside its root is never followed.
    let outside = dir.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("secret"), b"secret").unwrap();
    std::os::unix::fs::symlink(&outside, root.join("out")).unwrap();
    let denied = StatusCode::PermissionDenied;
    assert_eq!(code(sftp.create("/out/new").await), denied);
    assert_eq!(code(sftp.open("/out/secret").await), denied);
    assert_eq!(code(sftp.metadata("/out").await), denied);
    assert_eq!(code(sftp.read_dir("/out").await), denied);
    assert_eq!(code(sftp.create_dir("/out/sub").await), denied);
    assert_eq!(code(sftp.canonicalize("/out").await), denied);
    std::os::unix::fs::symlink(outside.join("secret"), root.join("file-out")).unwrap();
    assert_eq!(code(sftp.open("/file-out").await), denied);
    assert_eq!(code(sftp.create("/file-out").await), denied);
    assert_eq!(names(&outside), ["secret"]);
    assert_eq!(std::fs::read(outside.join("secret")).unwrap(), b"secret");
    // The link itself can be seen and removed.
    assert!(sftp.symlink_metadata("/out").await.unwrap().is_symlink());
    sftp.remove_file("/out").await.unwrap();
    assert!(outside.is_dir());

    // Symlinks inside the root work; absolute targets are the host's paths.
    sftp.symlink("/link", "/d/w").await.unwrap();
    assert_eq!(sftp.read_link("/link").await.unwrap(), "/d/w");
    assert_eq!(sftp.read("/link").await.unwrap(), b"w");
    sftp.symlink("/d/rel", "../y").await.unwrap();
    assert_eq!(sftp.read("/d/rel").await.unwrap(), b"y");
    assert_eq!(code(sftp.symlink("/d/up", "../../etc").await), denied);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sftp_evil_lists_hostile_names() {
    let (_dir, fleet) = start_with(|c| {
        c.count = 2;
        c.faults = vec![(Fault::SftpEvil, 50.0)];
    });
    let evil = (0..2)
        .find(|&i| fleet.fault_of(i) == Some(&Fault::SftpEvil))
        .unwrap();
    let healthy = 1 - evil;

    let session = login(&fleet, fleet.hosts()[evil].addr).await;
    let sftp = open_sftp(&session).await;
    put(&sftp, "/real", b"real file").await;
    assert_eq!(sftp.read("/real").await.unwrap(), b"real file");
    let listed: Vec<String> = sftp
        .read_dir("/")
        .await
        .unwrap()
        .map(|e| e.file_name())
        .collect();
    for name in [
        "real",
        "../escape",
        "/etc/evil",
        "a/../../b",
        "...",
        "size-lie",
    ] {
        assert!(
            listed.iter().any(|n| n == name),
            "{name} missing from {listed:?}"
        );
    }
    let meta = sftp
        .read_dir("/")
        .await
        .unwrap()
        .find(|e| e.file_name() == "../escape")
        .unwrap()
        .metadata();
    assert!(meta.is_regular());
    // Reading the hostile names returns data, as a client joining names would ask.
    let escape = sftp.read("/../escape").await.unwrap();
    assert!(escape.starts_with(b"fleetsh-sim sftp-evil"), "{escape:?}");
    assert!(!sftp.read("/a/../../b").await.unwrap().is_empty());
    assert_eq!(sftp.metadata("/size-lie").await.unwrap().len(), 4);
    assert_eq!(sftp.read("/size-lie").await.unwrap().len(), 16 * 1024);
    assert_eq!(sftp.canonicalize(".").await.unwrap(), "/../../outside");
    assert_eq!(sftp.canonicalize("/real").await.unwrap(), "/../../outside");
    // Nothing was written outside the root.
    assert_eq!(names(&fleet.host_root(evil)), ["real"]);
    assert_eq!(
        names(&fleet.state_dir().join("root")),
        [fleet.hosts()[evil].name.clone()]
    );

    let session = login(&fleet, fleet.hosts()[healthy].addr).await;
    let sftp = open_sftp(&session).await;
    let listed: Vec<String> = sftp
        .read_dir("/")
        .await
        .unwrap()
        .map(|e| e.file_name())
        .collect();
    assert!(listed.is_empty(), "{listed:?}");
    assert_eq!(sftp.canonicalize(".").await.unwrap(), "/");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sftp_cut_closes_the_connection_after_the_threshold() {
    const LIMIT: u64 = 100_000;
    let (_dir, fleet) = start_with(|c| c.faults = vec![(Fault::SftpCut(LIMIT), 100.0)]);
    let session = login(&fleet, fleet.hosts()[0].addr).await;

    // Below the threshold all is well, and commands are not affected.
    let sftp_session = open_sftp(&session).await;
    put(&sftp_session, "/small", &text(60_000)).await;
    let out = exec(&session, "echo still here", usize::MAX).await;
    assert_eq!(out.stdout, b"still here\n");
    assert!(!session.is_closed());

    // Crossing it (counted over the connection) cuts the connection.
    let mut file = sftp_session.create("/big").await.unwrap();
    let wrote = async {
        file.write_all(&text(1 << 20)).await?;
        file.shutdown().await
    }
    .await;
    assert!(wrote.is_err(), "the upload should fail");
    let mut waited = 0;
    while !session.is_closed() {
        assert!(waited < 200, "the connection was not closed");
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += 1;
    }
    assert!(session.channel_open_session().await.is_err());
    // Exactly the bytes up to the threshold were stored.
    let root = fleet.host_root(0);
    let small = std::fs::metadata(root.join("small")).unwrap().len();
    let big = std::fs::metadata(root.join("big")).unwrap().len();
    assert_eq!(small + big, LIMIT);

    // Every new connection gets its own budget.
    let session = login(&fleet, fleet.hosts()[0].addr).await;
    let sftp_session = open_sftp(&session).await;
    put(&sftp_session, "/again", &text(60_000)).await;
    assert_eq!(sftp_session.read("/again").await.unwrap(), text(60_000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_subsystems_are_refused() {
    let (_dir, fleet) = start(1, None);
    let session = login(&fleet, fleet.hosts()[0].addr).await;
    let mut channel = session.channel_open_session().await.unwrap();
    channel.request_subsystem(true, "netconf").await.unwrap();
    assert!(matches!(channel.wait().await, Some(ChannelMsg::Failure)));
    // After an exec, the channel is taken.
    let mut channel = session.channel_open_session().await.unwrap();
    channel.exec(true, "sleep 1").await.unwrap();
    channel.request_subsystem(true, "sftp").await.unwrap();
    let mut replies = Vec::new();
    while replies.len() < 2 {
        match channel.wait().await {
            Some(msg @ (ChannelMsg::Success | ChannelMsg::Failure)) => replies.push(msg),
            Some(_) => {}
            None => break,
        }
    }
    assert!(matches!(
        replies.as_slice(),
        [ChannelMsg::Success, ChannelMsg::Failure]
    ));
    let _sftp = sftp_channel(&session).await;
    // The root is there once a session started.
    assert!(fleet.host_root(0).is_dir());
}

//! A private OpenSSH `sshd` on 127.0.0.1 for the single-file transfer runs: the test kit's
//! fixture (`fleetsh_testkit::sshd`) on one address, with `LogLevel DEBUG1`, which makes sshd
//! log the negotiated ciphers of every connection (`kex: client->server cipher: ...`): that is
//! how the tables name the cipher each client used. `Subsystem sftp` is OpenSSH's
//! `sftp-server`. The server is stopped by its PID (the child this process started) when
//! dropped.

use anyhow::Result;
pub use fleetsh_testkit::sshd::{Sshd, sftp_server};

/// Creates keys and config and starts `sshd`, waiting for its banner.
pub fn start() -> Result<Sshd> {
    Ok(Sshd::builder()
        .addrs(&["127.0.0.1"])
        .log_level("DEBUG1")
        .start()?)
}

//! The status replies of the SFTP server: [`Reply`], the error for a failed file system
//! call ([`io_status`]) or an unknown handle ([`bad_handle`]), and the `Ok` status ([`ok`]).

use std::io;

use russh_sftp::protocol::{Status, StatusCode};
use russh_sftp::server::StatusReply;

/// A request's answer, or the status that refuses it.
pub(super) type Reply<T> = Result<T, StatusReply>;

/// The status for a failed file system call on `path`.
pub(super) fn io_status(e: &io::Error, path: &str) -> StatusReply {
    let code = match e.kind() {
        io::ErrorKind::NotFound => StatusCode::NoSuchFile,
        io::ErrorKind::PermissionDenied => StatusCode::PermissionDenied,
        _ => StatusCode::Failure,
    };
    code.with_message(format!("{path}: {e}"))
}

/// The status for a handle the session does not know.
pub(super) fn bad_handle(handle: &str) -> StatusReply {
    StatusCode::Failure.with_message(format!("invalid handle `{handle}`"))
}

/// An `Ok` status.
pub(super) fn ok(id: u32) -> Status {
    Status {
        id,
        status_code: StatusCode::Ok,
        error_message: "Ok".into(),
        language_tag: "en-US".into(),
    }
}

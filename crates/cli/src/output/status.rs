//! The exit status a host's result stands for (`-S`): its command's, 128+N for a signal, 255
//! for a failure without one.

use fleetsh::{HostResult, Outcome};

/// A host's status as `ssh` would report it: the exit status (at most 255), 128 + the signal
/// number for a command killed by a signal (255 for a signal without a known number), 255 for a
/// host that failed without an exit status.
pub fn remote_status(r: &HostResult) -> u8 {
    match r.outcome() {
        Outcome::Ok => 0,
        Outcome::Exit(code) => u8::try_from(code).unwrap_or(255),
        Outcome::Signal(name) => signal_number(&name).map_or(255, |n| 128 + n),
        Outcome::Failed(_) => 255,
    }
}

/// The number of a signal named as in SSH's `exit-signal` (without `SIG`), with Linux numbers
/// for the ones that differ between systems (`USR1`, `USR2`, `BUS`, `SYS`...).
pub fn signal_number(name: &str) -> Option<u8> {
    Some(match name.strip_prefix("SIG").unwrap_or(name) {
        "HUP" => 1,
        "INT" => 2,
        "QUIT" => 3,
        "ILL" => 4,
        "TRAP" => 5,
        "ABRT" => 6,
        "BUS" => 7,
        "FPE" => 8,
        "KILL" => 9,
        "USR1" => 10,
        "SEGV" => 11,
        "USR2" => 12,
        "PIPE" => 13,
        "ALRM" => 14,
        "TERM" => 15,
        "XCPU" => 24,
        "XFSZ" => 25,
        "SYS" => 31,
        _ => return None,
    })
}

//! `floor`: the client's crypto floor per handshake, part by part, measured in this process
//! (no simulator).

use anyhow::Result;

use crate::bench::Bench;
use crate::floor;
use crate::procfs;
use crate::table::Table;

/// The client's crypto floor per handshake, measured in this process.
pub fn run(bench: &Bench, iters: usize) -> Result<()> {
    let f = floor::measure(iters)?;
    let mut t = Table::new(&["part", "us per handshake"]);
    for (part, us) in [
        ("x25519 key pair + agreement (aws-lc-rs)", f.x25519),
        ("ML-KEM-768 key pair + decapsulation (aws-lc-rs)", f.mlkem),
        (
            "Ed25519 host signature check (ssh-key / ed25519-dalek)",
            f.host_sig_check,
        ),
        ("Ed25519 user signature (aws-lc-rs)", f.user_sig),
        ("SHA-256: exchange hash and key derivation", f.hash),
        ("floor, curve25519-sha256", f.curve25519()),
        ("floor, mlkem768x25519-sha256", f.mlkem768x25519()),
    ] {
        t.row(vec![part.to_string(), format!("{us:.1}")]);
    }
    println!(
        "== client crypto floor per handshake ({}; {} CPUs; median of 5 rounds of {iters}) ==",
        procfs::utc_now(),
        bench.machine.nproc
    );
    print!("{}", t.render());
    Ok(())
}

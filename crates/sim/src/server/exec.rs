//! One exec request's command: the script run by the built-in shell with its output sent
//! on the channel, then the exit status (or signal), EOF and close; and the faults that act
//! around the command (`drop`, `hang`, `flood`, `exit`).

use std::sync::{Arc, OnceLock};

use russh::server::{self, Msg};
use russh::{ChannelWriteHalf, Sig};

use super::drop_fault::DropFault;
use super::host::Host;
use super::output::ChannelSink;
use super::pump::OutputWait;
use crate::Fault;
use crate::shell::{self, CHUNK, Context, Exit, Sink, Stream};

/// One exec request: the channel, the command and what it runs with.
pub(super) struct Job {
    pub(super) write: ChannelWriteHalf<Msg>,
    pub(super) output: Arc<OutputWait>,
    pub(super) handle: server::Handle,
    pub(super) host: Arc<Host>,
    /// Set on `drop` hosts.
    pub(super) drop: Option<DropFault>,
    pub(super) command: String,
    pub(super) ctx: Context,
}

/// The endless output of a `flood` host: 32 KiB of a repeated 64-byte text line.
fn flood_chunk() -> &'static [u8] {
    static CHUNK_DATA: OnceLock<Vec<u8>> = OnceLock::new();
    CHUNK_DATA.get_or_init(|| {
        let line = b"fleetsh-sim flood: the quick brown fox jumps over the lazy dog.\n";
        line.iter().copied().cycle().take(CHUNK).collect()
    })
}

/// Runs one exec request: output, then exit-status (or exit-signal), EOF, close, with the
/// host's fault applied after the output.
pub(super) async fn exec(job: Job) {
    let Job {
        write,
        output,
        handle,
        host,
        drop: drop_fault,
        command,
        mut ctx,
    } = job;
    let fault = host.behaviour.fault.as_ref();
    let mut sink = ChannelSink {
        write: &write,
        output: &output,
        pty: ctx.pty,
        drop: drop_fault,
    };
    let result = shell::run(&command, &mut ctx, &mut sink).await;
    // Done with stdin: from now on the pump discards it.
    drop(ctx);
    let Ok(mut exit) = result else {
        return; // the client is gone (or the connection was cut)
    };
    match fault {
        // No whole line was written: cut the connection instead of reporting the status.
        Some(Fault::Drop) => {
            if let Some(mut fault) = sink.drop.take() {
                let before = fault.reply_written().await;
                fault.cut_after(before, 0).await;
            }
            return;
        }
        Some(Fault::Hang) => std::future::pending::<()>().await,
        Some(Fault::Flood) => {
            while sink
                .write(Stream::Stdout, flood_chunk().into())
                .await
                .is_ok()
            {}
            return;
        }
        Some(Fault::Exit(status)) => exit = Exit::Status(u32::from(*status)),
        _ => {}
    }
    let sent = match exit {
        Exit::Status(status) => write.exit_status(status).await.is_ok(),
        Exit::Signal(name) => handle
            .exit_signal_request(
                write.id(),
                signal(name),
                false,
                String::new(),
                String::new(),
            )
            .await
            .is_ok(),
    };
    if sent {
        let _ = write.eof().await;
        let _ = write.close().await;
    }
}

/// The russh signal for a shell signal name.
fn signal(name: &str) -> Sig {
    match name {
        "ABRT" => Sig::ABRT,
        "ALRM" => Sig::ALRM,
        "FPE" => Sig::FPE,
        "HUP" => Sig::HUP,
        "ILL" => Sig::ILL,
        "INT" => Sig::INT,
        "KILL" => Sig::KILL,
        "PIPE" => Sig::PIPE,
        "QUIT" => Sig::QUIT,
        "SEGV" => Sig::SEGV,
        "TERM" => Sig::TERM,
        "USR1" => Sig::USR1,
        other => Sig::Custom(other.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flood_is_text_lines() {
        let chunk = flood_chunk();
        assert_eq!(chunk.len(), CHUNK);
        assert!(chunk.starts_with(b"fleetsh-sim flood: "));
        assert!(
            chunk
                .iter()
                .all(|b| *b == b'\n' || b.is_ascii_graphic() || *b == b' ')
        );
    }
}

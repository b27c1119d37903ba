//! `fleetsh config show HOST`: a host's effective connection settings and where each comes
//! from (like `ssh -G`).

use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::Result;
use fleetsh::config::{Flags, Layer, Layers};
use fleetsh::{Engine, HostTarget};

use crate::args::ShowArgs;
use crate::error::usage;
use crate::settings::{conn_flags, connection, file_connection_options};

/// `fleetsh config show HOST`.
pub fn config_show(a: ShowArgs) -> Result<ExitCode> {
    let mut layers = Layers::read(a.config.as_deref()).map_err(usage)?;
    let target = HostTarget::parse(&a.host).map_err(usage)?;
    layers.flags = conn_flags(
        &a.conn,
        Flags {
            port: a.port,
            ..Flags::default()
        },
    )?;
    let conn = layers.connection();
    let b = connection(Engine::builder(), &conn, &a.conn, None)?;
    let b = file_connection_options(b, &conn);
    let settings = b.host_settings(&target).map_err(usage)?;
    // The engine sees the fleetsh config file's values as explicit settings (`flag`): name
    // the file for those the command line did not give.
    let mut out = io::stdout().lock();
    for (name, value, origin) in settings.rows() {
        let origin = match (conn.layer_of(name), &layers.file_path) {
            (Some(Layer::File), Some(f)) if origin == "flag" => {
                format!("config file {}", f.display())
            }
            _ => origin,
        };
        writeln!(out, "{name:<22} {value}  # {origin}")?;
    }
    for i in &settings.ignored {
        writeln!(out, "# ignored: {} ({})", i.value, i.source)?;
    }
    Ok(ExitCode::SUCCESS)
}

//! `rtt`: round trips per host, against OpenSSH's `sshd` behind an emulated far network
//! (`far`: a namespace pair joined by a delaying link, MTU 1500).
//!
//! One host: `echo hello` by each client, a process started and waited for (`ip netns exec` in
//! the near namespace), wall time from spawn to exit; every client at every round trip in turn,
//! `--runs` times. Round trips = (median wall at D - median wall at the first delay) / D: what the
//! client waits on the network, whatever its CPU and start-up cost (they are in both walls).
//! Clients: fleetsh with its default key exchange and with curve25519 first, OpenSSH's `ssh`,
//! parallel-ssh and asyncssh (the `peers` scripts, one host).
//!
//! Then a fleet: `--fleet-hosts` hosts (one far address each, 16 per `sshd`) at fanout
//! `--fleet-fanout` behind each round trip, for fleetsh (both key exchanges), asyncssh, pdsh and
//! parallel-ssh.
//!
//! `--capture DIR` also records the first single-host run of each client at each non-zero
//! round trip with tcpdump on the far side's end of the link, and prints its flights: the data
//! each side sent before it next waited for the other (time, bytes, segments).

pub(crate) mod far;
pub mod kept;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::Serialize;

use crate::bench::Bench;
use crate::measure::Kex;
use crate::peers::{self, Peer};
use crate::procfs;
use crate::stats;
use crate::table::{Table, num};
use far::{FarLink, FarSshd, Keys, far_addr};

/// The command every client runs.
const COMMAND: &str = "echo hello";
/// Pause after each run, so that sshd's sessions of one run have ended before the next.
const SETTLE: Duration = Duration::from_millis(200);

/// What `rtt` measures.
#[derive(Debug, Clone)]
pub struct Options {
    /// Round trips of the links, ms; the first is the base of the differences.
    pub delays: Vec<u64>,
    /// Single-host runs per client and round trip.
    pub runs: usize,
    /// Hosts of the fleet runs (0: none).
    pub fleet_hosts: usize,
    /// Hosts in flight in the fleet runs.
    pub fleet_fanout: usize,
    /// Runs per fleet client and round trip.
    pub fleet_runs: usize,
    /// The Python with parallel-ssh and asyncssh.
    pub python: PathBuf,
    /// Where to keep packet captures (and print flights).
    pub capture: Option<PathBuf>,
    /// More `fleetsh` binaries (LABEL, PATH) run beside the others with the default key
    /// exchange: e.g. two builds.
    pub engines: Vec<(String, PathBuf)>,
}

/// Later commands per kept-connection client process (the row takes their median).
const KEPT_RUNS: usize = 5;

/// A client of the comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Client {
    Fleetsh(Kex),
    /// `--engine` number N, with the default key exchange.
    Engine(usize),
    Ssh,
    Peer(Peer),
    /// fleetsh's later commands over a kept connection ([`kept`]).
    Kept,
}

impl Client {
    fn label(self, engines: &[(String, PathBuf)]) -> String {
        match self {
            Client::Engine(i) => engines
                .get(i)
                .map_or_else(|| format!("engine {i}"), |(l, _)| l.clone()),
            Client::Fleetsh(Kex::Default) => "fleetsh".into(),
            Client::Fleetsh(Kex::Curve25519) => "fleetsh --kex curve25519".into(),
            Client::Ssh => "ssh (OpenSSH)".into(),
            Client::Peer(p) => p.name().into(),
            Client::Kept => "fleetsh, later command on a kept connection".into(),
        }
    }

    /// The first key exchange of the client's offer (what it would guess).
    fn first_kex(self) -> &'static str {
        match self {
            Client::Kept => "(already connected)",
            Client::Fleetsh(Kex::Default)
            | Client::Engine(_)
            | Client::Peer(Peer::FleetshPython | Peer::FleetshPssh) => "mlkem768x25519-sha256",
            Client::Fleetsh(Kex::Curve25519) => "curve25519-sha256",
            Client::Ssh | Client::Peer(Peer::Pdsh | Peer::Pssh | Peer::Clush) => {
                "sntrup761x25519-sha512@openssh.com"
            }
            Client::Peer(Peer::Asyncssh) => "mlkem768x25519-sha256",
            Client::Peer(Peer::ParallelSsh) => "curve25519-sha256",
        }
    }
}

/// One client's walls at one round trip.
#[derive(Debug, Clone, Serialize)]
struct Walls {
    rtt_ms: u64,
    wall_ms: Vec<f64>,
    hosts_ok: Vec<usize>,
}

/// One row of a table.
#[derive(Debug, Clone, Serialize)]
struct Row {
    label: String,
    first_kex: String,
    hosts: usize,
    fanout: usize,
    walls: Vec<Walls>,
    /// (median wall at D - median wall at the first delay) / D, per delay after the first.
    round_trips: Vec<Option<f64>>,
}

#[derive(Debug, Serialize)]
struct Report {
    scenario: &'static str,
    date: String,
    nproc: usize,
    cpu_model: String,
    load_before: [f64; 3],
    load_after: [f64; 3],
    forwarder: String,
    mtu: u32,
    command: &'static str,
    single: Vec<Row>,
    fleet: Vec<Row>,
}

/// Runs the scenario.
pub fn run(bench: &Bench, o: &Options) -> Result<()> {
    if o.delays.is_empty() || o.runs == 0 {
        bail!("--delays needs at least one round trip and --runs at least 1");
    }
    let engines: Vec<Client> = (0..o.engines.len()).map(Client::Engine).collect();
    let mut single_clients = vec![
        Client::Fleetsh(Kex::Default),
        Client::Fleetsh(Kex::Curve25519),
    ];
    single_clients.extend(&engines);
    single_clients.extend([
        Client::Kept,
        Client::Ssh,
        Client::Peer(Peer::ParallelSsh),
        Client::Peer(Peer::Asyncssh),
    ]);
    let mut fleet_clients = vec![
        Client::Fleetsh(Kex::Default),
        Client::Fleetsh(Kex::Curve25519),
    ];
    fleet_clients.extend(&engines);
    fleet_clients.extend([
        Client::Peer(Peer::Asyncssh),
        Client::Peer(Peer::Pdsh),
        Client::Peer(Peer::ParallelSsh),
    ]);
    for p in [Peer::ParallelSsh, Peer::Asyncssh, Peer::Pdsh] {
        peers::check(p, &o.python)?;
    }
    let load_before = procfs::loadavg();
    let hosts = o.fleet_hosts.max(1);
    let keys = Keys::create(hosts)?;
    // One namespace pair and one set of servers per round trip, made once.
    let mut links = Vec::new();
    for (i, &d) in o.delays.iter().enumerate() {
        let link = FarLink::create(i, d)?;
        let sshd = FarSshd::start(&link, &keys, hosts, &i.to_string())?;
        links.push((link, sshd));
    }
    let forwarder = links
        .first()
        .map(|(l, _)| l.policy.clone())
        .unwrap_or_default();
    eprintln!("rtt: delay forwarder at {forwarder}");
    let ctx = Ctx {
        bench,
        keys: &keys,
        python: &o.python,
        engines: &o.engines,
    };
    let label = |c: Client| c.label(&o.engines);

    // One host, every client at every round trip in turn.
    let mut single: Vec<Row> = single_clients
        .iter()
        .map(|c| row(label(*c), c.first_kex(), 1, 1, &o.delays))
        .collect();
    for run in 0..o.runs {
        for (li, (link, sshd)) in links.iter().enumerate() {
            for (ci, &c) in single_clients.iter().enumerate() {
                let capture = match &o.capture {
                    Some(dir) if run == 0 && link.rtt_ms > 0 => Some(dir.join(format!(
                        "{}-{}ms.pcap",
                        label(c).replace([' ', '(', ')', '/'], "").replace("--", "-"),
                        link.rtt_ms
                    ))),
                    _ => None,
                };
                let r = ctx.run(c, link, 1, 1, capture.as_deref());
                let (wall, ok) = r.with_context(|| format!("sshd log: {}", sshd.log()))?;
                eprintln!(
                    "rtt: run {} {} at {} ms: {:.1} ms{}",
                    run + 1,
                    label(c),
                    link.rtt_ms,
                    wall,
                    if ok == 1 { "" } else { " FAILED" }
                );
                if let Some(w) = single.get_mut(ci).and_then(|r| r.walls.get_mut(li)) {
                    w.wall_ms.push(wall);
                    w.hosts_ok.push(ok);
                }
                if let Some(p) = capture {
                    print_flights(&p, &label(c), link.rtt_ms)?;
                }
                std::thread::sleep(SETTLE);
            }
        }
    }
    finish(&mut single, &o.delays);

    // The fleet.
    let mut fleet: Vec<Row> = Vec::new();
    if o.fleet_hosts > 0 {
        fleet = fleet_clients
            .iter()
            .map(|c| {
                row(
                    label(*c),
                    c.first_kex(),
                    o.fleet_hosts,
                    o.fleet_fanout,
                    &o.delays,
                )
            })
            .collect();
        for run in 0..o.fleet_runs {
            for (li, (link, _)) in links.iter().enumerate() {
                for (ci, &c) in fleet_clients.iter().enumerate() {
                    let (wall, ok) = ctx.run(c, link, o.fleet_hosts, o.fleet_fanout, None)?;
                    eprintln!(
                        "rtt: fleet run {} {} at {} ms: {:.0} ms, {ok} of {} ok",
                        run + 1,
                        label(c),
                        link.rtt_ms,
                        wall,
                        o.fleet_hosts
                    );
                    if let Some(w) = fleet.get_mut(ci).and_then(|r| r.walls.get_mut(li)) {
                        w.wall_ms.push(wall);
                        w.hosts_ok.push(ok);
                    }
                    std::thread::sleep(SETTLE * 5);
                }
            }
        }
        finish(&mut fleet, &o.delays);
    }
    drop(links);

    let report = Report {
        scenario: "rtt",
        date: procfs::utc_now(),
        nproc: bench.machine.nproc,
        cpu_model: bench.machine.cpu_model.clone(),
        load_before,
        load_after: procfs::loadavg(),
        forwarder,
        mtu: 1500,
        command: COMMAND,
        single,
        fleet,
    };
    print_report(&report, o);
    if bench.json {
        println!("{}", serde_json::to_string(&report)?);
    }
    Ok(())
}

fn row(label: String, first_kex: &str, hosts: usize, fanout: usize, delays: &[u64]) -> Row {
    Row {
        label,
        first_kex: first_kex.into(),
        hosts,
        fanout,
        walls: delays
            .iter()
            .map(|&d| Walls {
                rtt_ms: d,
                wall_ms: Vec::new(),
                hosts_ok: Vec::new(),
            })
            .collect(),
        round_trips: Vec::new(),
    }
}

fn finish(rows: &mut [Row], delays: &[u64]) {
    for r in rows {
        let medians: Vec<Option<f64>> = r.walls.iter().map(|w| stats::median(&w.wall_ms)).collect();
        let base = medians.first().copied().flatten();
        let base_rtt = delays.first().copied().unwrap_or(0);
        r.round_trips = delays
            .iter()
            .zip(&medians)
            .skip(1)
            .map(|(&d, m)| {
                let span = d.checked_sub(base_rtt).filter(|s| *s > 0)? as f64;
                Some((m.as_ref()? - base?) / span)
            })
            .collect();
    }
}

fn print_report(r: &Report, o: &Options) {
    println!(
        "== rtt: `{COMMAND}` against OpenSSH sshd behind a delaying link ({}; {} CPUs; load {:.2} \
         -> {:.2}; forwarder {}; MTU {}) ==",
        r.date, r.nproc, r.load_before[0], r.load_after[0], r.forwarder, r.mtu
    );
    for (title, rows) in [("one host", &r.single), ("fleet", &r.fleet)] {
        if rows.is_empty() {
            continue;
        }
        let mut headers: Vec<String> = vec!["client".into(), "first kex offered".into()];
        if title == "fleet" {
            headers.push("hosts".into());
            headers.push("fanout".into());
        }
        for d in &o.delays {
            headers.push(format!("wall ms @{d} (range)"));
        }
        if title == "fleet" {
            headers.push("ok".into());
        }
        for d in o.delays.iter().skip(1) {
            headers.push(format!("round trips @{d}"));
        }
        let h: Vec<&str> = headers.iter().map(String::as_str).collect();
        let mut t = Table::new(&h);
        for row in rows.iter() {
            let mut cells = vec![row.label.clone(), row.first_kex.clone()];
            if title == "fleet" {
                cells.push(row.hosts.to_string());
                cells.push(row.fanout.to_string());
            }
            for w in &row.walls {
                let lo = w.wall_ms.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = w.wall_ms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                cells.push(format!(
                    "{} ({}-{})",
                    num(stats::median(&w.wall_ms), 0),
                    num(Some(lo), 0),
                    num(Some(hi), 0)
                ));
            }
            if title == "fleet" {
                let min_ok = row
                    .walls
                    .iter()
                    .flat_map(|w| w.hosts_ok.iter().copied())
                    .min()
                    .unwrap_or(0);
                cells.push(format!("{min_ok}/{}", row.hosts));
            }
            for rt in &row.round_trips {
                cells.push(num(*rt, 1));
            }
            t.row(cells);
        }
        println!("-- {title} --");
        print!("{}", t.render());
    }
    println!(
        "wall: process start to exit (median of {} runs, {} per fleet row), the clients started in \
         the near namespace by `ip netns exec`; round trips: (median wall at D - median wall at \
         {} ms) / (D - {}) ms. ok: the fewest hosts OK in any fleet run. A failed single-host \
         run is marked FAILED on stderr.",
        o.runs,
        o.fleet_runs,
        o.delays.first().copied().unwrap_or(0),
        o.delays.first().copied().unwrap_or(0),
    );
    println!();
}

/// What every run needs.
struct Ctx<'a> {
    bench: &'a Bench,
    keys: &'a Keys,
    python: &'a Path,
    engines: &'a [(String, PathBuf)],
}

impl Ctx<'_> {
    /// Runs `c` on far hosts 0..`hosts` over `link`: (wall ms, hosts OK).
    fn run(
        &self,
        c: Client,
        link: &FarLink,
        hosts: usize,
        fanout: usize,
        capture: Option<&Path>,
    ) -> Result<(f64, usize)> {
        let dir = tempfile::tempdir().context("temporary directory")?;
        let targets: Vec<fleetsh::HostTarget> = (0..hosts)
            .map(|i| fleetsh::HostTarget {
                user: None,
                host: far_addr(i),
                port: Some(22),
            })
            .collect();
        let key = self.keys.path("id_ed25519");
        let known = self.keys.path("known_hosts");
        let timeout_s = self.bench.child_timeout.as_secs_f64().min(120.0);
        let plain = match c {
            Client::Fleetsh(_) | Client::Engine(_) => {
                let (exe, kex) = match c {
                    Client::Engine(i) => match self.engines.get(i) {
                        Some((_, path)) => (path.as_path(), Kex::Default),
                        None => bail!("no engine {i}"),
                    },
                    Client::Fleetsh(kex) => (self.bench.fleetsh.as_path(), kex),
                    _ => bail!("not a fleetsh client"),
                };
                let list = dir.path().join("hosts");
                crate::sample::write_hosts_file(&list, &targets, true)?;
                let mut cmd = Command::new(exe);
                cmd.arg("run")
                    .arg("-H")
                    .arg(&list)
                    .args(["-l", &self.keys.user, "--no-agent", "--no-ssh-config"])
                    .args(["--no-progress", "--host-key-check", "strict", "-o", "json"])
                    .arg("-i")
                    .arg(&key)
                    .arg("--known-hosts")
                    .arg(&known)
                    .args(["-f", &fanout.to_string(), "-t", "60"])
                    .args([
                        "--kex",
                        match kex {
                            Kex::Default => "default",
                            Kex::Curve25519 => "curve25519",
                        },
                    ])
                    .arg("--")
                    .args(COMMAND.split_ascii_whitespace())
                    .env("XDG_CONFIG_HOME", dir.path());
                cmd
            }
            Client::Ssh => {
                let mut cmd = Command::new("ssh");
                cmd.args(["-F", "/dev/null", "-i"]).arg(&key);
                for opt in [
                    "IdentitiesOnly=yes".to_string(),
                    "IdentityAgent=none".into(),
                    "BatchMode=yes".into(),
                    "StrictHostKeyChecking=yes".into(),
                    "GlobalKnownHostsFile=/dev/null".into(),
                    format!("UserKnownHostsFile={}", known.display()),
                    "ConnectTimeout=60".into(),
                ] {
                    cmd.arg("-o").arg(opt);
                }
                cmd.args(["-p", "22", "-l", &self.keys.user])
                    .arg(far_addr(0))
                    .args(COMMAND.split_ascii_whitespace());
                cmd
            }
            Client::Kept => {
                let mut cmd =
                    Command::new(std::env::current_exe().context("the path of fleetsh-bench")?);
                cmd.arg("kept-client")
                    .args(["--host", &far_addr(0), "--user", &self.keys.user])
                    .arg("--identity")
                    .arg(&key)
                    .arg("--known-hosts")
                    .arg(&known)
                    .args(["--runs", &KEPT_RUNS.to_string(), "--command", COMMAND]);
                cmd
            }
            Client::Peer(p) => {
                let inv = peers::Invocation {
                    user: &self.keys.user,
                    identity: &key,
                    known_hosts: &known,
                    fanout,
                    connect_timeout_s: 60.0,
                    command_timeout_s: 60.0,
                    command: COMMAND,
                    python: self.python,
                };
                peers::command(p, &targets, dir.path(), &inv)?
            }
        };
        let mut cmd = link.in_near(&plain);
        cmd.env_remove("SSH_AUTH_SOCK")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let tcpdump = match capture {
            Some(path) => Some(Tcpdump::start(link, path)?),
            None => None,
        };
        let (wall, status, out, err) = timed(cmd, Duration::from_secs_f64(timeout_s))?;
        if let Some(t) = tcpdump {
            t.stop();
        }
        let (wall, ok) = match c {
            Client::Fleetsh(_) | Client::Engine(_) => {
                let ok = fleetsh::record::parse_lines(&out)
                    .filter(|r| {
                        r.as_ref()
                            .is_ok_and(|r| r.error.is_none() && r.exit_code == Some(0))
                    })
                    .count();
                (wall, ok)
            }
            Client::Ssh => (wall, usize::from(status.success() && out == "hello\n")),
            Client::Peer(p) => {
                let mut seen = HashMap::new();
                for l in out.lines() {
                    peers::parse_line(p, l, &mut seen);
                }
                for l in err.lines() {
                    peers::parse_error_line(p, l, &mut seen);
                }
                let ok = seen
                    .values()
                    .filter(|o| matches!(o, peers::Outcome::Ok(_)))
                    .count();
                (wall, ok)
            }
            // The row's wall is the median later command, as the engine timed it.
            Client::Kept => match out
                .lines()
                .last()
                .and_then(|l| serde_json::from_str::<kept::KeptWalls>(l).ok())
            {
                Some(w) => (
                    stats::median(&w.later_ms).unwrap_or(f64::NAN),
                    usize::from(w.ok == w.later_ms.len() && w.ok > 0),
                ),
                None => (f64::NAN, 0),
            },
        };
        if ok < hosts {
            eprintln!(
                "rtt: {} at {} ms: {ok} of {hosts} OK ({status}); stderr: {}",
                c.label(self.engines),
                link.rtt_ms,
                err.lines().take(5).collect::<Vec<_>>().join(" | ")
            );
        }
        Ok((wall, ok))
    }
}

/// Runs `cmd` to its end or `timeout` (then kills it): (wall ms, status, stdout, stderr).
fn timed(
    mut cmd: Command,
    timeout: Duration,
) -> Result<(f64, std::process::ExitStatus, String, String)> {
    use std::io::Read;
    let start = Instant::now();
    let mut child = cmd.spawn().context("starting a client")?;
    let drain = |s: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = String::new();
            if let Some(mut s) = s {
                let _ = s.read_to_string(&mut buf);
            }
            buf
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            break child.wait()?;
        }
        std::thread::sleep(Duration::from_micros(500));
    };
    let wall = stats::ms(start.elapsed());
    Ok((
        wall,
        status,
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default(),
    ))
}

/// tcpdump on the far side's end of a link, writing a pcap file.
struct Tcpdump {
    child: std::process::Child,
}

impl Tcpdump {
    fn start(link: &FarLink, path: &Path) -> Result<Tcpdump> {
        let mut child = link
            .far_command("tcpdump")
            .args(["-i", &link.far_dev, "-nn", "-U", "-w"])
            .arg(path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting tcpdump (apt-get install tcpdump)")?;
        // tcpdump says "listening on ..." once it captures.
        let Some(stderr) = child.stderr.take() else {
            bail!("tcpdump: no stderr");
        };
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            let mut lines = std::io::BufReader::new(stderr).lines();
            let _ = tx.send(lines.next());
            for _ in lines {}
        });
        if rx.recv_timeout(Duration::from_secs(10)).is_err() {
            let _ = child.kill();
            let _ = child.wait();
            bail!("tcpdump did not start within 10 s");
        }
        Ok(Tcpdump { child })
    }

    fn stop(mut self) {
        // Let the last packets (the closing FINs) be written first.
        std::thread::sleep(Duration::from_millis(300));
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One flight: the data one side sent before the other side's next data.
#[derive(Debug, PartialEq)]
struct Flight {
    from_client: bool,
    start_ms: f64,
    end_ms: f64,
    bytes: usize,
    segments: usize,
}

/// The flights of a capture read by `tcpdump -nn -tt -r` (the far side's view: a client
/// packet's time is its arrival, a server packet's its departure). Segments without data (pure
/// ACKs) only show in the handshake line.
fn flights(text: &str) -> Vec<Flight> {
    let mut v: Vec<Flight> = Vec::new();
    let mut t0 = None;
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (Some(t), Some(src), Some(len)) = (
            f.first().and_then(|t| t.parse::<f64>().ok()),
            f.get(2),
            f.iter()
                .position(|w| *w == "length")
                .and_then(|i| f.get(i + 1))
                .and_then(|l| l.trim_end_matches(':').parse::<usize>().ok()),
        ) else {
            continue;
        };
        let t0 = *t0.get_or_insert(t);
        let ms = (t - t0) * 1000.0;
        if len == 0 {
            continue;
        }
        let from_client = src.starts_with(far::NEAR_ADDR);
        match v.last_mut() {
            Some(last) if last.from_client == from_client => {
                last.end_ms = ms;
                last.bytes += len;
                last.segments += 1;
            }
            _ => v.push(Flight {
                from_client,
                start_ms: ms,
                end_ms: ms,
                bytes: len,
                segments: 1,
            }),
        }
    }
    v
}

fn print_flights(pcap: &Path, label: &str, rtt_ms: u64) -> Result<()> {
    let out = Command::new("tcpdump")
        .args(["-nn", "-tt", "-r"])
        .arg(pcap)
        .stderr(Stdio::null())
        .output()
        .context("tcpdump -r")?;
    let text = String::from_utf8_lossy(&out.stdout);
    println!(
        "-- flights: {label} at {rtt_ms} ms (far side's view, ms from the SYN; {}) --",
        pcap.display()
    );
    let mut t = Table::new(&["#", "from", "at ms", "until ms", "bytes", "segments"]);
    for (i, f) in flights(&text).iter().enumerate() {
        t.row(vec![
            (i + 1).to_string(),
            if f.from_client { "client" } else { "server" }.into(),
            format!("{:.1}", f.start_ms),
            format!("{:.1}", f.end_ms),
            f.bytes.to_string(),
            f.segments.to_string(),
        ]);
    }
    print!("{}", t.render());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flights_group_data_segments_by_sender() {
        let text = "\
1.000000 IP 10.77.0.1.40000 > 10.78.1.1.22: Flags [S], seq 1, win 64240, length 0
1.000100 IP 10.78.1.1.22 > 10.77.0.1.40000: Flags [S.], seq 2, ack 2, win 65160, length 0
1.100000 IP 10.77.0.1.40000 > 10.78.1.1.22: Flags [P.], seq 1:903, ack 1, win 63, length 902: SSH: SSH-2.0-x
1.120000 IP 10.78.1.1.22 > 10.77.0.1.40000: Flags [P.], seq 1:42, ack 903, win 63, length 41: SSH: SSH-2.0-y
1.220000 IP 10.78.1.1.22 > 10.77.0.1.40000: Flags [P.], seq 42:1130, ack 903, win 63, length 1088
1.320000 IP 10.77.0.1.40000 > 10.78.1.1.22: Flags [.], ack 1130, win 62, length 0
1.325000 IP 10.77.0.1.40000 > 10.78.1.1.22: Flags [P.], seq 903:951, ack 1130, win 62, length 48
";
        let f = flights(text);
        assert_eq!(f.len(), 3);
        assert!(f[0].from_client && f[0].bytes == 902);
        assert!(!f[1].from_client && f[1].bytes == 1129 && f[1].segments == 2);
        assert!((f[1].start_ms - 120.0).abs() < 0.01 && (f[1].end_ms - 220.0).abs() < 0.01);
        assert!(f[2].from_client && (f[2].start_ms - 325.0).abs() < 0.01);
    }
}

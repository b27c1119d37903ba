//! A real single-node Slurm cluster that a test starts for itself, on loopback.
//!
//! [`Cluster::start`] makes a scratch directory holding a new munge key, a `slurm.conf`, the
//! daemons' state, spool, logs and PID files, and starts three daemons as children of the test
//! process, in the foreground: `munged -F` (with its own socket), `slurmctld -D` and
//! `slurmd -D -N localhost`. It returns once `sinfo` reports the node `idle`. The node has 4
//! CPUs whatever the machine has (`SlurmdParameters=config_overrides`), so `srun -n 4` and a
//! 4-task job array run at once even on 2 cores; a request larger than the node fails at once
//! instead of waiting forever (`EnforcePartLimits=ALL`); batch jobs start without the default
//! delay of about 3 s (`batch_sched_delay=0`).
//!
//! Several clusters run side by side: each has its own directory, munge socket and key, and
//! its own two ports (`SlurmctldPort`, `SlurmdPort`, free ports found by binding
//! 127.0.0.1:0), so tests in one process each start their own without a lock. A port taken by
//! someone else between the probe and the daemon's bind makes the start retry with new ports.
//!
//! [`Cluster::command`] (and [`Cluster::srun`], [`Cluster::sbatch`], ...) builds a client
//! command for this cluster: `SLURM_CONF` names its config, and the `SLURM_*` variables of
//! the environment the tests run in (the tests may themselves run under Slurm) are removed.
//!
//! Dropping the cluster cancels the jobs still in it, then stops exactly the daemons it
//! started, by their PIDs: SIGTERM, a bounded wait, then SIGKILL.
//!
//! Everything needed is checked first: running as root (slurmd starts jobs as their user),
//! and the programs of Debian's `slurmctld`, `slurmd`, `slurm-client` and `munge` packages.
//! Anything missing, and any daemon that fails, panics naming it (and how to install it, or
//! the daemons' log tails): a Slurm test never skips.

use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

const INSTALL: &str =
    "apt-get install -y --no-install-recommends slurmctld slurmd slurm-client munge";

/// How long the cluster may take to report its node idle.
const READY_WITHIN: Duration = Duration::from_secs(30);

/// How long each daemon may take to stop after SIGTERM (slurmctld and munged take about 2 s).
const STOP_WITHIN: Duration = Duration::from_secs(10);

/// A running single-node Slurm cluster: its directory and the daemons this process started.
#[derive(Debug)]
pub struct Cluster {
    dir: tempfile::TempDir,
    conf: PathBuf,
    programs: Programs,
    /// munged, slurmctld, slurmd, in the order they started.
    daemons: Vec<Daemon>,
    /// `SlurmctldPort`.
    pub controller_port: u16,
    /// `SlurmdPort`.
    pub node_port: u16,
}

#[derive(Debug)]
struct Daemon {
    name: &'static str,
    child: Child,
}

/// Where each program was found.
#[derive(Debug, Clone)]
struct Programs {
    munged: PathBuf,
    mungekey: PathBuf,
    slurmctld: PathBuf,
    slurmd: PathBuf,
    sinfo: PathBuf,
    srun: PathBuf,
    sbatch: PathBuf,
    squeue: PathBuf,
    scancel: PathBuf,
}

/// What a start attempt came to.
enum Started {
    Ready(Box<Cluster>),
    /// A daemon found its port taken: try again with other ports.
    PortTaken(String),
}

impl Cluster {
    /// Starts a cluster of one node with 4 CPUs and waits until it is idle; panics naming
    /// what is missing or which daemon failed (with the daemons' log tails).
    #[track_caller]
    pub fn start() -> Cluster {
        require_root();
        let programs = Programs::find();
        let mut taken = Vec::new();
        for _ in 0..3 {
            match start_once(&programs) {
                Started::Ready(cluster) => return *cluster,
                Started::PortTaken(logs) => taken.push(logs),
            }
        }
        panic!(
            "the Slurm daemons found their ports taken three times in a row:\n{}",
            taken.join("\n")
        )
    }

    /// The scratch directory (removed with the cluster).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The cluster's `slurm.conf`.
    pub fn conf(&self) -> &Path {
        &self.conf
    }

    /// A client command (`srun`, `sbatch`, `squeue`, `scancel`, `sinfo`, `scontrol`, ...)
    /// for this cluster: `SLURM_CONF` set, the `SLURM_*` variables of the caller's
    /// environment removed.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("SLURM_") {
                cmd.env_remove(name);
            }
        }
        cmd.env("SLURM_CONF", &self.conf).stdin(Stdio::null());
        cmd
    }

    /// `srun` for this cluster.
    pub fn srun(&self) -> Command {
        self.command(&self.programs.srun)
    }

    /// `sbatch` for this cluster.
    pub fn sbatch(&self) -> Command {
        self.command(&self.programs.sbatch)
    }

    /// `squeue` for this cluster.
    pub fn squeue(&self) -> Command {
        self.command(&self.programs.squeue)
    }

    /// `scancel` for this cluster.
    pub fn scancel(&self) -> Command {
        self.command(&self.programs.scancel)
    }

    /// `sinfo` for this cluster.
    pub fn sinfo(&self) -> Command {
        self.command(&self.programs.sinfo)
    }

    /// Runs `cmd` to its end with its output captured, killing it (by its PID) and panicking
    /// if it takes longer than `limit`.
    #[track_caller]
    pub fn output_within(&self, cmd: &mut Command, limit: Duration) -> Output {
        let child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
        wait_output(child, limit).unwrap_or_else(|partial| {
            panic!(
                "{cmd:?} did not end within {limit:?}; it printed:\n{}\n{}\n{}",
                String::from_utf8_lossy(&partial.stdout),
                String::from_utf8_lossy(&partial.stderr),
                self.log_tails()
            )
        })
    }

    /// Runs `sbatch`, a command from [`Cluster::sbatch`] with its options and script, with
    /// `--parsable` added first, and returns the job id; panics with sbatch's error if the
    /// job is refused.
    #[track_caller]
    pub fn submit(&self, sbatch: &mut Command) -> String {
        let mut args: Vec<std::ffi::OsString> = vec!["--parsable".into()];
        args.extend(sbatch.get_args().map(ToOwned::to_owned));
        let mut cmd = Command::new(sbatch.get_program());
        cmd.args(&args);
        for (k, v) in sbatch.get_envs() {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        if let Some(d) = sbatch.get_current_dir() {
            cmd.current_dir(d);
        }
        let out = self.output_within(cmd.stdin(Stdio::null()), Duration::from_secs(30));
        let stdout = String::from_utf8_lossy(&out.stdout);
        // `--parsable` prints `jobid` or `jobid;cluster`.
        let id = stdout
            .trim()
            .split(';')
            .next()
            .unwrap_or_default()
            .to_string();
        assert!(
            out.status.success() && !id.is_empty(),
            "{cmd:?} failed ({}): {}{}",
            out.status,
            stdout,
            String::from_utf8_lossy(&out.stderr)
        );
        id
    }

    /// Polls `squeue` (every 50 ms, at most `limit`) until job `id` (and every task of a job
    /// array) has left the queue; panics with the queue and the logs if it has not.
    #[track_caller]
    pub fn wait_gone(&self, id: &str, limit: Duration) {
        let deadline = Instant::now() + limit;
        let rounds = limit.as_millis() / 50 + 1;
        let mut last = String::new();
        for _ in 0..rounds {
            let out = self.output_within(
                self.squeue().args(["-h", "-j", id, "-o", "%i %T %R"]),
                Duration::from_secs(30),
            );
            // squeue lists pending, running and completing jobs; one already purged from the
            // controller is an error ("Invalid job id").
            last = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if last.is_empty() {
                return;
            }
            if Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "job {id} still queued after {limit:?}:\n{last}\n{}",
            self.log_tails()
        )
    }

    /// The last lines of every daemon's log, for failure messages.
    pub fn log_tails(&self) -> String {
        log_tails(self.dir.path())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Jobs still running (a test that failed midway): cancel them while the controller is
        // up, so that no job step outlives the cluster. Bounded: a few seconds at most.
        self.cancel_jobs();
        stop(&mut self.daemons);
    }
}

impl Cluster {
    fn cancel_jobs(&mut self) {
        // Only a controller that is up can be asked.
        let controller_up = self
            .daemons
            .iter_mut()
            .any(|d| d.name == "slurmctld" && matches!(d.child.try_wait(), Ok(None)));
        if !controller_up {
            return;
        }
        let list = |c: &Cluster| -> Vec<String> {
            let mut cmd = c.squeue();
            cmd.args(["-h", "-o", "%A"]);
            match spawn_piped(&mut cmd).and_then(|child| wait_output(child, STOP_WITHIN).ok()) {
                Some(out) => String::from_utf8_lossy(&out.stdout)
                    .split_whitespace()
                    .map(str::to_string)
                    .collect(),
                None => Vec::new(),
            }
        };
        let jobs = list(self);
        if jobs.is_empty() {
            return;
        }
        let mut cmd = self.scancel();
        cmd.args(&jobs);
        if let Some(child) = spawn_piped(&mut cmd) {
            let _ = wait_output(child, STOP_WITHIN);
        }
        for _ in 0..100 {
            if list(self).is_empty() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn spawn_piped(cmd: &mut Command) -> Option<Child> {
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .ok()
}

/// Waits for `child` at most `limit`, reading its output; on time out kills it (by its PID)
/// and returns what it printed as the error.
fn wait_output(mut child: Child, limit: Duration) -> Result<Output, Output> {
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let stdout = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
    );
    let stderr = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
    );
    let deadline = Instant::now() + limit;
    let rounds = limit.as_millis() / 10 + 1;
    let mut status: Option<ExitStatus> = None;
    for _ in 0..rounds {
        match child.try_wait() {
            Ok(Some(s)) => {
                status = Some(s);
                break;
            }
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            _ => break,
        }
    }
    let timed_out = status.is_none();
    if timed_out {
        let _ = child.kill();
    }
    let status = match status {
        Some(s) => s,
        None => match child.wait() {
            Ok(s) => s,
            Err(e) => panic!("cannot wait for a child process: {e}"),
        },
    };
    // The pipes close when the child is gone, unless it left a grandchild holding them: a
    // grandchild of a timed-out child is not waited for.
    let join = |h: std::thread::JoinHandle<Vec<u8>>| {
        if timed_out && !h.is_finished() {
            Vec::new()
        } else {
            h.join().unwrap_or_default()
        }
    };
    let out = Output {
        status,
        stdout: join(stdout),
        stderr: join(stderr),
    };
    if timed_out { Err(out) } else { Ok(out) }
}

#[track_caller]
fn require_root() {
    let uid = Command::new("id")
        .arg("-u")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    match uid.as_deref() {
        Some("0") => {}
        Some(uid) => panic!(
            "the Slurm tests start slurmd, which runs jobs as their submitting user and must \
             run as root: run these tests as root (uid is {uid})"
        ),
        None => panic!("cannot tell the current user id (`id -u` failed)"),
    }
}

impl Programs {
    #[track_caller]
    fn find() -> Programs {
        let mut missing = Vec::new();
        let mut find = |name: &str, package: &str| -> PathBuf {
            find_program(name).unwrap_or_else(|| {
                missing.push(format!("{name} (package {package})"));
                PathBuf::from(name)
            })
        };
        let programs = Programs {
            munged: find("munged", "munge"),
            mungekey: find("mungekey", "munge"),
            slurmctld: find("slurmctld", "slurmctld"),
            slurmd: find("slurmd", "slurmd"),
            sinfo: find("sinfo", "slurm-client"),
            srun: find("srun", "slurm-client"),
            sbatch: find("sbatch", "slurm-client"),
            squeue: find("squeue", "slurm-client"),
            scancel: find("scancel", "slurm-client"),
        };
        if !missing.is_empty() {
            panic!(
                "the Slurm tests need a single-node Slurm cluster, and these programs are not \
                 installed: {}; install them with `{INSTALL}` (as root)",
                missing.join(", ")
            );
        }
        programs
    }
}

/// `name` in `PATH`, or in the system directories a non-login `PATH` may lack.
fn find_program(name: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(
        ["/usr/sbin", "/sbin", "/usr/bin", "/bin", "/usr/local/sbin"]
            .iter()
            .map(PathBuf::from),
    );
    dirs.into_iter()
        .map(|d| d.join(name))
        .find(|p| p.is_absolute() && p.is_file())
}

/// Two distinct ports free on 127.0.0.1 a moment ago.
#[track_caller]
fn free_ports() -> (u16, u16) {
    let bind = || {
        std::net::TcpListener::bind(("127.0.0.1", 0))
            .unwrap_or_else(|e| panic!("cannot bind 127.0.0.1:0 to find a free port: {e}"))
    };
    // Both held at once, so they differ.
    let (a, b) = (bind(), bind());
    let port = |l: &std::net::TcpListener| {
        l.local_addr()
            .map(|a| a.port())
            .unwrap_or_else(|e| panic!("cannot read a bound port: {e}"))
    };
    (port(&a), port(&b))
}

#[track_caller]
fn start_once(programs: &Programs) -> Started {
    let dir = tempfile::Builder::new()
        .prefix("fleetsh-slurm-")
        .tempdir()
        .unwrap_or_else(|e| panic!("cannot create a temp dir: {e}"));
    let s = dir.path();
    #[track_caller]
    fn io(what: &str, s: &Path, e: std::io::Error) -> ! {
        panic!("{what} in {}: {e}", s.display())
    }
    // munged refuses a socket in a directory that not everyone may enter: the scratch
    // directory and run/ are 0755, the key's directory 0700.
    for sub in ["state", "spool", "log", "run", "munge"] {
        std::fs::create_dir(s.join(sub)).unwrap_or_else(|e| io(&format!("create {sub}/"), s, e));
    }
    for (path, mode) in [
        (s.to_path_buf(), 0o755),
        (s.join("run"), 0o755),
        (s.join("munge"), 0o700),
    ] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
            .unwrap_or_else(|e| io("chmod", s, e));
    }
    let key = s.join("munge/munge.key");
    let out = Command::new(&programs.mungekey)
        .arg("-c")
        .arg("-k")
        .arg(&key)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", programs.mungekey.display()));
    assert!(
        out.status.success(),
        "mungekey could not create a key ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );

    let (controller_port, node_port) = free_ports();
    let conf = s.join("slurm.conf");
    std::fs::write(&conf, slurm_conf(s, controller_port, node_port))
        .unwrap_or_else(|e| io("write slurm.conf", s, e));

    let mut cluster = Cluster {
        conf: conf.clone(),
        programs: programs.clone(),
        daemons: Vec::new(),
        controller_port,
        node_port,
        dir,
    };
    let s = cluster.dir.path().to_path_buf();
    let socket = s.join("run/munge.socket");
    let mut munged = Command::new(&programs.munged);
    munged
        .arg("-F")
        .arg("-S")
        .arg(&socket)
        .arg(format!("--key-file={}", key.display()))
        .arg(format!("--log-file={}", s.join("log/munged.log").display()))
        .arg(format!("--pid-file={}", s.join("run/munged.pid").display()))
        .arg(format!(
            "--seed-file={}",
            s.join("munge/munged.seed").display()
        ));
    cluster.spawn("munged", &mut munged);
    // munged answers once its socket exists: at most 10 s.
    let deadline = Instant::now() + Duration::from_secs(10);
    for _ in 0..1000 {
        if socket.exists() || Instant::now() >= deadline {
            break;
        }
        cluster.check_alive();
        std::thread::sleep(Duration::from_millis(10));
    }
    if !socket.exists() {
        cluster.fail(&format!(
            "munged made no socket {} within 10 s",
            socket.display()
        ));
    }

    let mut slurmctld = Command::new(&programs.slurmctld);
    slurmctld.arg("-D").arg("-f").arg(&conf);
    cluster.spawn("slurmctld", &mut slurmctld);
    let mut slurmd = Command::new(&programs.slurmd);
    slurmd
        .arg("-D")
        .arg("-f")
        .arg(&conf)
        .args(["-N", "localhost"]);
    cluster.spawn("slurmd", &mut slurmd);

    // `sinfo -h -o %T` prints the node's state: `idle` once slurmd has registered.
    let deadline = Instant::now() + READY_WITHIN;
    let mut state = String::new();
    for _ in 0..300 {
        if let Some(logs) = cluster.port_taken() {
            return Started::PortTaken(logs);
        }
        cluster.check_alive();
        let mut sinfo = cluster.sinfo();
        sinfo.args(["-h", "-o", "%T"]);
        if let Some(out) =
            spawn_piped(&mut sinfo).and_then(|c| wait_output(c, Duration::from_secs(10)).ok())
        {
            state = String::from_utf8_lossy(&out.stdout).trim().to_string()
                + String::from_utf8_lossy(&out.stderr).trim();
            if state == "idle" {
                return Started::Ready(Box::new(cluster));
            }
        }
        if Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    if let Some(logs) = cluster.port_taken() {
        return Started::PortTaken(logs);
    }
    cluster.fail(&format!(
        "the Slurm node is not idle after {READY_WITHIN:?} (sinfo says {state:?})"
    ))
}

impl Cluster {
    /// Starts a daemon in the foreground, its stdout and stderr in `log/NAME.out`.
    #[track_caller]
    fn spawn(&mut self, name: &'static str, cmd: &mut Command) {
        let out_path = self.dir.path().join(format!("log/{name}.out"));
        let file = File::create(&out_path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", out_path.display()));
        let err = file
            .try_clone()
            .unwrap_or_else(|e| panic!("cannot duplicate a file handle: {e}"));
        let child = cmd
            .env("SLURM_CONF", &self.conf)
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(err)
            .spawn();
        match child {
            Ok(child) => self.daemons.push(Daemon { name, child }),
            Err(e) => self.fail(&format!("cannot start {name} ({cmd:?}): {e}")),
        }
    }

    /// Panics if a daemon has exited.
    #[track_caller]
    fn check_alive(&mut self) {
        let mut exited = None;
        for d in &mut self.daemons {
            if let Ok(Some(status)) = d.child.try_wait() {
                exited = Some(format!("{} exited with {status}", d.name));
                break;
            }
        }
        if let Some(why) = exited {
            self.fail(&why);
        }
    }

    /// The log tails, when a daemon exited because its port was taken.
    fn port_taken(&mut self) -> Option<String> {
        let any_exited = self
            .daemons
            .iter_mut()
            .any(|d| matches!(d.child.try_wait(), Ok(Some(_))));
        if !any_exited {
            return None;
        }
        let logs = self.log_tails();
        logs.contains("Address already in use").then_some(logs)
    }

    /// Stops the daemons and panics with `why` and their log tails.
    #[track_caller]
    fn fail(&mut self, why: &str) -> ! {
        stop(&mut self.daemons);
        panic!(
            "the single-node Slurm cluster did not start: {why}\n{}",
            self.log_tails()
        )
    }
}

/// SIGTERM to every daemon, at most [`STOP_WITHIN`] for them to exit, then SIGKILL: only the
/// children this process started, by their PIDs.
fn stop(daemons: &mut Vec<Daemon>) {
    // slurmd first, munged last: slurmctld and slurmd authenticate through munged while they
    // stop. All are signalled at once; they stop in about 2 s.
    for d in daemons.iter_mut().rev() {
        if matches!(d.child.try_wait(), Ok(None)) {
            let _ = Command::new("kill")
                .args(["-TERM", &d.child.id().to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
    let deadline = Instant::now() + STOP_WITHIN;
    for _ in 0..(STOP_WITHIN.as_millis() / 20 + 1) {
        let mut running = 0;
        for d in daemons.iter_mut() {
            if matches!(d.child.try_wait(), Ok(None)) {
                running += 1;
            }
        }
        if running == 0 || Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    for d in daemons.iter_mut() {
        if matches!(d.child.try_wait(), Ok(None)) {
            let _ = d.child.kill();
        }
        let _ = d.child.wait();
    }
    daemons.clear();
}

fn slurm_conf(s: &Path, controller_port: u16, node_port: u16) -> String {
    let p = |rel: &str| s.join(rel).display().to_string();
    format!(
        "ClusterName=fleetsh\n\
         SlurmctldHost=localhost\n\
         SlurmctldPort={controller_port}\n\
         SlurmdPort={node_port}\n\
         SlurmUser=root\n\
         SlurmdUser=root\n\
         AuthType=auth/munge\n\
         AuthInfo=socket={socket}\n\
         CredType=cred/munge\n\
         StateSaveLocation={state}\n\
         SlurmdSpoolDir={spool}\n\
         SlurmctldPidFile={ctld_pid}\n\
         SlurmdPidFile={d_pid}\n\
         SlurmctldLogFile={ctld_log}\n\
         SlurmdLogFile={d_log}\n\
         ProctrackType=proctrack/linuxproc\n\
         TaskPlugin=task/none\n\
         JobAcctGatherType=jobacct_gather/none\n\
         AccountingStorageType=accounting_storage/none\n\
         SelectType=select/cons_tres\n\
         SelectTypeParameters=CR_Core\n\
         MpiDefault=none\n\
         ReturnToService=2\n\
         SlurmdParameters=config_overrides\n\
         SchedulerParameters=batch_sched_delay=0\n\
         EnforcePartLimits=ALL\n\
         MailProg=/bin/true\n\
         NodeName=localhost CPUs=4 State=UNKNOWN\n\
         PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP\n",
        socket = p("run/munge.socket"),
        state = p("state"),
        spool = p("spool"),
        ctld_pid = p("run/slurmctld.pid"),
        d_pid = p("run/slurmd.pid"),
        ctld_log = p("log/slurmctld.log"),
        d_log = p("log/slurmd.log"),
    )
}

/// The last 20 lines of every file in `dir/log`.
fn log_tails(dir: &Path) -> String {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("log"))
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.sort();
    let mut text = String::new();
    for f in files {
        let content = std::fs::read(&f).unwrap_or_default();
        let content = String::from_utf8_lossy(&content);
        let lines: Vec<&str> = content.lines().collect();
        let tail = lines
            .get(lines.len().saturating_sub(20)..)
            .unwrap_or_default();
        text += &format!("--- {} (last {} lines)\n", f.display(), tail.len());
        for l in tail {
            text += l;
            text.push('\n');
        }
    }
    text
}

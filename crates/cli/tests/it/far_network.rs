//! fleetsh across an emulated far network, in a network namespace each test makes: a TUN device
//! that returns every packet 50 ms late (`tests/support/delay_tun.py`: this kernel has no
//! netem), with OpenSSH's sshd on the near side and 200 "hosts" on the far side.

use super::*;

/// 200 hosts connecting at once to one sshd 100 ms away overflow its listen queue: the kernel
/// answers with SYN cookies, and then only the first segment of a client's first flight can
/// prove the cookie. A flight of two segments (a KEXINIT with a guessed ML-KEM-768 key share
/// is about 2,400 bytes) whose second segment arrives first is reset. The default settings
/// must reach every host a plainer client reaches: the guess is left out where it does not fit
/// in one segment. The kernel's own counters show the condition was met.
#[test]
fn default_settings_reach_every_host_behind_syn_cookies() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for key in ["host_key", "client_key"] {
        let ok = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(d.join(key))
            .status()
            .expect("ssh-keygen (openssh-client)");
        assert!(ok.success());
    }
    std::fs::copy(d.join("client_key.pub"), d.join("authorized_keys")).unwrap();
    let host_pub = std::fs::read_to_string(d.join("host_key.pub")).unwrap();
    let host_pub: Vec<&str> = host_pub.split_whitespace().take(2).collect();
    let known: String = (1..=200)
        .map(|i| format!("[10.9.0.{i}]:2222 {}\n", host_pub.join(" ")))
        .collect();
    std::fs::write(d.join("known_hosts"), known).unwrap();
    std::fs::create_dir(d.join("home")).unwrap();
    let user = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout)
        .unwrap()
        .trim()
        .to_string();
    std::fs::write(
        d.join("sshd_config"),
        format!(
            "Port 2222\nListenAddress 10.8.0.1\nHostKey {d}/host_key\n\
             AuthorizedKeysFile {d}/authorized_keys\nPidFile none\nUsePAM no\nStrictModes no\n\
             PermitRootLogin prohibit-password\nMaxStartups 1000\nSetEnv HOME={d}/home\n\
             LogLevel ERROR\n",
            d = d.display()
        ),
    )
    .unwrap();
    let tun = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/delay_tun.py");
    let script = format!(
        "set -e; ip link set lo up; \
         sysctl -qw net.core.somaxconn=128 net.ipv4.tcp_syncookies=1 \
           net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0; \
         python3 {tun} fleetd0 50 > {d}/tun.ready & tun=$!; \
         for i in $(seq 1 100); do grep -q ready {d}/tun.ready && break; sleep 0.05; done; \
         grep -q ready {d}/tun.ready; \
         ip addr add 10.8.0.1/32 dev fleetd0; ip link set fleetd0 mtu 1500 up; \
         ip route add 10.9.0.0/16 dev fleetd0 src 10.8.0.1; \
         /usr/sbin/sshd -D -e -f {d}/sshd_config 2> {d}/sshd.log & sshd=$!; \
         for i in $(seq 1 100); do (exec 3<>/dev/tcp/10.8.0.1/2222) 2>/dev/null && break; sleep 0.05; done; \
         {bin} run -w '10.9.0.[1-200]' -p 2222 -l {user} -i {d}/client_key \
           --known-hosts {d}/known_hosts --no-ssh-config --no-agent -t 60 -o json -- true \
           > {d}/out.json 2> {d}/err.txt || true; \
         cat /proc/net/netstat > {d}/netstat; kill $sshd $tun",
        d = d.display(),
        bin = env!("CARGO_BIN_EXE_fleetsh"),
    );
    let out = Command::new("unshare")
        .args(["--net", "--fork", "bash", "-c", &script])
        .env_remove("SSH_AUTH_SOCK")
        .output()
        .expect("unshare (util-linux) runs this test in a namespace of its own");
    assert!(
        out.status.success(),
        "cannot set up the far network (needs root, ip, python3, /dev/net/tun, sshd with /run/sshd): {}",
        text(&out.stderr)
    );
    let err = std::fs::read_to_string(d.join("err.txt")).unwrap_or_default();
    let sshd_log = std::fs::read_to_string(d.join("sshd.log")).unwrap_or_default();
    let lines: Vec<Value> = std::fs::read_to_string(d.join("out.json"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 200, "{err}\nsshd: {sshd_log}");
    let failed: Vec<&Value> = lines.iter().filter(|v| v["exit_code"] != 0).collect();
    assert!(
        failed.is_empty(),
        "{} of 200 failed, e.g. {}\n{err}",
        failed.len(),
        failed[0]
    );
    // The condition: SYN cookies were sent and validated, and none failed.
    let netstat = std::fs::read_to_string(d.join("netstat")).unwrap();
    let mut rows = netstat.lines();
    let (names, values) = (rows.next().unwrap(), rows.next().unwrap());
    let counter = |name: &str| -> u64 {
        names
            .split_whitespace()
            .zip(values.split_whitespace())
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.parse().unwrap())
            .unwrap()
    };
    assert!(
        counter("SyncookiesSent") > 0,
        "no SYN cookies: the test did not create the condition it guards"
    );
    assert_eq!(counter("SyncookiesFailed"), 0);
}

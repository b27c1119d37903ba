#!/usr/bin/env python3
"""Puts each sample of a `perf record -g` profile of the fleetsh client in one bucket by its top
frame, and prints CPU per host per bucket (docs/benchmarks.md, "The client's CPU against the
floor, in place").

Usage: perf-buckets.py PERF_DATA SAMPLE_HZ HOSTS

A kernel sample counts as the simulator's TCP receive when its call chain passes through the
receive path: on loopback, the kernel delivers what the client sends to the simulator's socket in
the client's context.
"""
import collections
import re
import subprocess
import sys

CRYPTO = re.compile(
    r"x25519|curve25519|edwards|keccak|mlkem|ml_kem|sha2|sha256|sha512|chacha|poly1305|ed25519"
    r"|fieldelement|sha3|montgomery|scalar|fiat_|p256|bn_mul|aes|gcm|ghash",
    re.I,
)
PEER_RECEIVE = re.compile(
    r"tcp_v4_rcv|ip_rcv|__netif_receive_skb|process_backlog|net_rx_action|ip_local_deliver"
    r"|tcp_rcv_established|tcp_v4_do_rcv|do_softirq|handle_softirqs"
)


def bucket(frames):
    top = frames[0]
    if "[kernel.kallsyms]" in top:
        if any(PEER_RECEIVE.search(f) for f in frames):
            return "kernel: the simulator's TCP receive (softirq in the client)"
        return "kernel: the client's own (system calls, TCP send, epoll, faults, scheduling)"
    if "libc.so" in top and re.search(r"malloc|free|realloc|calloc|chunk|consolidate", top):
        return "malloc/free"
    if "libc.so" in top and re.search(r"mem(cpy|move|set|cmp)", top):
        return "memcpy/memset"
    if CRYPTO.search(top):
        return "crypto"
    if "libc.so" in top:
        return "libc, other"
    if "tokio" in top:
        return "tokio"
    if "russh" in top:
        return "russh"
    return "other user space (inlined futures, std, serde, ...)"


def main():
    data, hz, hosts = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
    out = subprocess.run(
        ["perf", "script", "-i", data, "-F", "ip,sym,dso"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    counts = collections.Counter()
    for block in out.split("\n\n"):
        frames = [l.strip() for l in block.strip().split("\n") if l.strip()]
        if frames:
            counts[bucket(frames)] += 1
    total = sum(counts.values())
    print(f"samples {total}, CPU {total / hz:.3f} s, {total / hz / hosts * 1e6:.0f} us/host")
    for name, n in counts.most_common():
        print(f"{100 * n / total:5.1f}%  {n / hz / hosts * 1e6:5.0f} us/host  {name}")


if __name__ == "__main__":
    main()

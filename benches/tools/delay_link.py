#!/usr/bin/env python3
"""A far network between two network namespaces, without netem: two TUN devices and a delay.

Usage (as root; `fleetsh-bench rtt` runs it):
    delay_link.py NEAR_DEVICE FAR_DEVICE ONE_WAY_DELAY_MS

Creates the TUN devices NEAR_DEVICE and FAR_DEVICE in the current network namespace and prints
"ready"; the caller then moves each into its namespace (`ip link set DEV netns NS`: the device
keeps its file descriptor) and gives it addresses and routes. Every IP packet the kernel of one
side routes into its device is written, ONE_WAY_DELAY_MS later, into the other side's device,
unchanged: a link whose round trip is twice the delay. The devices do not coalesce segments (no
GSO), so TCP segments cross one by one as on a real link of the devices' MTU. This kernel has no
netem; crates/cli/tests/support/delay_tun.py is the one-namespace variant of the same idea.

Runs at real-time priority (SCHED_FIFO) when allowed: on a loaded machine an ordinary process
wakes up milliseconds late, which would add to every hop. Stops when its standard input ends
(the harness that started it is gone) or when killed. Bounded: at most 100,000 packets wait per
direction (beyond that packets are dropped, as a full router queue would).
"""
import collections
import fcntl
import os
import select
import struct
import sys
import time

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
MAX_WAITING = 100_000
READS_PER_WAKEUP = 256


def tun(name):
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    os.set_blocking(fd, False)
    return fd


def main():
    near_name, far_name, delay = sys.argv[1], sys.argv[2], float(sys.argv[3]) / 1000.0
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(50))
        policy = "SCHED_FIFO 50"
    except OSError as e:
        policy = f"normal priority ({e})"
    near, far = tun(near_name), tun(far_name)
    # The other side of each device, and the packets on their way to it: (due, packet).
    other = {near: far, far: near}
    waiting = {near: collections.deque(), far: collections.deque()}
    stdin = sys.stdin.fileno()
    print(f"ready {policy}", flush=True)
    while True:
        due = [q[0][0] for q in waiting.values() if q]
        timeout = max(0.0, min(due) - time.monotonic()) if due else None
        readable, _, _ = select.select([near, far, stdin], [], [], timeout)
        if stdin in readable and not os.read(stdin, 4096):
            return
        now = time.monotonic()
        for fd in readable:
            if fd == stdin:
                continue
            queue = waiting[other[fd]]
            for _ in range(READS_PER_WAKEUP):
                try:
                    packet = os.read(fd, 65536)
                except BlockingIOError:
                    break
                if len(queue) < MAX_WAITING:
                    queue.append((now + delay, packet))
        now = time.monotonic()
        for fd, queue in waiting.items():
            while queue and queue[0][0] <= now:
                try:
                    os.write(fd, queue.popleft()[1])
                except OSError:
                    pass


if __name__ == "__main__":
    main()

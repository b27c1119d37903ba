#!/usr/bin/env python3
"""A far network on one machine, without netem: a TUN device whose packets come back late.

Usage (as root, inside a network namespace of its own):
    delay_tun.py DEVICE DELAY_MS

It creates the TUN device DEVICE, then reads every IPv4 packet the kernel routes into it,
waits DELAY_MS and writes it back with its source and destination addresses swapped. With
the device holding LOCAL/32 and a route for a FAR network through it, a connection from LOCAL
to FAR:port reaches a server listening on LOCAL:port, seen as coming from FAR: every packet
crosses the device once each way, so the round trip is twice DELAY_MS. Swapping two addresses
changes neither the IP nor the TCP/UDP checksum (both are sums over them). The device does not
coalesce segments (no GSO), so TCP segments cross one by one, as on a real link.

Prints "ready" once the device exists; runs until killed. Bounded: at most 100,000 packets
wait at any time (beyond, packets are dropped, as a full router queue would).
"""
import fcntl
import os
import select
import struct
import sys
import time
from collections import deque

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
MAX_WAITING = 100_000


def main():
    name, delay = sys.argv[1], float(sys.argv[2]) / 1000.0
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    os.set_blocking(fd, False)
    print("ready", flush=True)
    waiting = deque()
    while True:
        timeout = None
        if waiting:
            timeout = max(0.0, waiting[0][0] - time.monotonic())
        readable, _, _ = select.select([fd], [], [], timeout)
        if readable:
            for _ in range(256):
                try:
                    packet = os.read(fd, 65536)
                except BlockingIOError:
                    break
                if len(packet) >= 20 and packet[0] >> 4 == 4 and len(waiting) < MAX_WAITING:
                    waiting.append((time.monotonic() + delay, packet))
        now = time.monotonic()
        while waiting and waiting[0][0] <= now:
            _, p = waiting.popleft()
            swapped = p[:12] + p[16:20] + p[12:16] + p[20:]
            try:
                os.write(fd, swapped)
            except OSError:
                pass


if __name__ == "__main__":
    main()

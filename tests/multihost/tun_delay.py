"""Latency where `tc netem` is missing: every packet routed into a TUN device comes back out
of it `DELAY_MS` later.

    python tun_delay.py DEVICE DELAY_MS      (in the router's namespace; prints "ready")

The device exists already (`ip tuntap add dev DEVICE mode tun`); policy routing sends the
packets to delay into it (tests/multihost/netns.py: Network._impair_tun). Each packet read is
written back when its time comes; the kernel then routes it on as if it had just arrived on
DEVICE. The delay is the same for every packet, so their order is kept, as netem's is.
Standalone (standard library only). Stop it with a signal.
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


def main(argv: list[str]) -> None:
    if len(argv) != 3:
        sys.exit(__doc__)
    device, delay = argv[1], float(argv[2]) / 1000
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", device.encode(), IFF_TUN | IFF_NO_PI))
    os.set_blocking(fd, False)
    waiting: collections.deque[tuple[float, bytes]] = collections.deque()
    print("ready", flush=True)
    while True:
        timeout = max(0.0, waiting[0][0] - time.monotonic()) if waiting else None
        readable, _, _ = select.select([fd], [], [], timeout)
        if readable:
            now = time.monotonic()
            while True:
                try:
                    packet = os.read(fd, 65536)
                except BlockingIOError:
                    break
                waiting.append((now + delay, packet))
        now = time.monotonic()
        while waiting and waiting[0][0] <= now:
            try:
                os.write(fd, waiting.popleft()[1])
            except OSError:
                pass  # a packet the kernel refuses is lost, as on a wire


if __name__ == "__main__":
    main(sys.argv)

"""Run a command as if on another machine (what `ip netns exec` does, plus a host name).

    python hostexec.py /run/netns/NS HOSTNAME HOSTS_FILE -- COMMAND [ARG...]

Joins the network namespace, takes a UTS namespace of its own (HOSTNAME, so a worker's
default nickname is its machine's) and a private mount namespace in which HOSTS_FILE is
/etc/hosts (so host names resolve as they would in a studio), then execs COMMAND with the
environment it was given. Standalone (standard library only): tests/multihost/netns.py runs it.
"""

import ctypes
import os
import socket
import sys

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWNET = 0x40000000
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18


def main(argv: list[str]) -> None:
    if len(argv) < 6 or argv[4] != "--":
        sys.exit(__doc__)
    ns_path, hostname, hosts, command = argv[1], argv[2], argv[3], argv[5:]
    libc = ctypes.CDLL(None, use_errno=True)

    def check(result: int, what: str) -> None:
        if result != 0:
            err = ctypes.get_errno()
            sys.exit(f"hostexec: {what}: {os.strerror(err)}")

    fd = os.open(ns_path, os.O_RDONLY)
    check(libc.setns(fd, CLONE_NEWNET), f"setns {ns_path}")
    os.close(fd)
    check(libc.unshare(CLONE_NEWNS | CLONE_NEWUTS), "unshare")
    check(libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "mount --make-rprivate /")
    check(libc.mount(hosts.encode(), b"/etc/hosts", None, MS_BIND, None), f"bind {hosts} on /etc/hosts")
    socket.sethostname(hostname)
    try:
        os.execvp(command[0], command)
    except OSError as ex:
        sys.exit(f"hostexec: {command[0]}: {ex}")


if __name__ == "__main__":
    main(sys.argv)

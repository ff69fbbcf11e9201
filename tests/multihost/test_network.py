"""The hosts and faults themselves, measured: separate machines, real latency and loss, cuts.

Two hosts on two LANs with the router between them (netns.Network), no Flamenco. What the
fault tests rely on is checked here with packets: the delay shows in round-trip times, the
loss in the share of UDP datagrams that never come back, a cut in connections that time out.
"""

from __future__ import annotations

import signal
import socket
import statistics
import subprocess
import threading
import time

import pytest

from .netns import NETNS_DIR, PREFIX, Network, sweep_stale

pytestmark = pytest.mark.multihost


@pytest.fixture
def lan(tmp_path, hosts_available):
    net = Network(tmp_path / "net")
    try:
        net.add_segment("managers", "10.77.1")
        net.add_segment("render", "10.77.2")
        manager = net.add_host("manager", "managers", "10.77.1.11")
        worker = net.add_host("worker", "render", "10.77.2.21")
        net.start()
        yield net, manager, worker
    finally:
        net.close()


def udp_echo(host, port: int) -> socket.socket:
    sock = host.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((host.address, port))

    def serve():
        while True:
            try:
                data, peer = sock.recvfrom(2048)
                sock.sendto(data, peer)
            except OSError:
                return
    threading.Thread(target=serve, daemon=True).start()
    return sock


def probe(client, server_address: str, port: int, count: int, gap: float = 0.002,
          wait: float = 1.5) -> tuple[list[float], int]:
    """Send `count` numbered datagrams; the round-trip times of those that came back, and how many did not."""
    sock = client.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sent: dict[int, float] = {}
    rtts: list[float] = []

    def receive():
        sock.settimeout(0.2)
        last = time.monotonic()
        while time.monotonic() - last < wait:
            try:
                data, _ = sock.recvfrom(2048)
            except socket.timeout:
                continue
            now = last = time.monotonic()
            rtts.append(now - sent[int(data)])
    reader = threading.Thread(target=receive)
    reader.start()
    for i in range(count):
        sent[i] = time.monotonic()
        sock.sendto(str(i).encode(), (server_address, port))
        time.sleep(gap)
    reader.join()
    sock.close()
    return rtts, count - len(rtts)


def test_hosts_are_separate_machines(lan):
    net, manager, worker = lan
    out = worker.run(["sh", "-c", "hostname; getent hosts manager; echo $TMPDIR $HOME"]).stdout.split()
    assert out[0] == "worker"
    assert out[1:3] == ["10.77.1.11", "manager"]
    assert out[3:] == [str(worker.tmp), str(worker.home)]
    assert worker.tmp != manager.tmp
    # Each host has its own loopback: a service on the manager's 127.0.0.1 is not the worker's.
    listener = manager.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    client = worker.socket()
    client.settimeout(2)
    with pytest.raises(ConnectionRefusedError):
        client.connect(("127.0.0.1", port))
    client.close()
    listener.close()
    # Killing a host's processes kills only them.
    sleeper = manager.spawn(["sleep", "300"], log="sleeper")
    bystander = subprocess.Popen(["sleep", "300"])
    try:
        deadline = time.monotonic() + 10
        while sleeper.pid not in manager.pids():  # hostexec is still entering the namespace
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert sleeper.pid in manager.kill_all()
        assert sleeper.wait(5) == -signal.SIGKILL
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()


def test_delay_and_loss_are_really_on_the_wire(lan):
    net, manager, worker = lan
    echo = udp_echo(manager, 7000)
    try:
        rtts, lost = probe(worker, manager.address, 7000, 200)
        assert lost == 0
        assert statistics.median(rtts) < 0.02, statistics.median(rtts)

        net.impair("render", delay_ms=100, loss=0.05)
        rtts, lost = probe(worker, manager.address, 7000, 1000)
        # Each way 100 ms and 5 %: round trips of 200 ms, 1 - 0.95^2 = 9.75 % of them lost
        # (1000 probes: the standard deviation of the share is about 0.9 %).
        assert 0.195 < statistics.median(rtts) < 0.25, statistics.median(rtts)
        assert min(rtts) > 0.195
        assert 0.05 < lost / 1000 < 0.15, lost

        # TCP through the impairment: a connection costs a round trip, and bytes arrive intact.
        listener = manager.socket()
        listener.bind((manager.address, 7001))
        listener.listen()
        payload = bytes(range(256)) * 4096  # 1 MiB
        received = bytearray()

        def serve():
            conn, _ = listener.accept()
            while chunk := conn.recv(65536):
                received.extend(chunk)
            conn.close()
        server = threading.Thread(target=serve)
        server.start()
        client = worker.socket()
        start = time.monotonic()
        client.connect((manager.address, 7001))
        connected = time.monotonic() - start
        client.sendall(payload)
        client.close()
        server.join(60)
        listener.close()
        assert connected > 0.19
        assert bytes(received) == payload

        net.clear_impairment()
        rtts, lost = probe(worker, manager.address, 7000, 200)
        assert lost == 0 and statistics.median(rtts) < 0.02
    finally:
        echo.close()


def test_a_cut_drops_everything_until_healed(lan):
    net, manager, worker = lan
    echo = udp_echo(manager, 7000)
    listener = manager.socket()
    listener.bind((manager.address, 7002))
    listener.listen()
    try:
        net.cut(worker, manager)
        client = worker.socket()
        client.settimeout(1.5)
        with pytest.raises(socket.timeout):  # no refusal, no answer: the packets vanish
            client.connect((manager.address, 7002))
        client.close()
        assert probe(worker, manager.address, 7000, 20, wait=0.5)[1] == 20

        # One way only: what the worker sends arrives, the answers do not.
        net.heal()
        net.cut(manager, worker, both_ways=False)
        arrived = []
        listener.settimeout(0.2)
        udp = worker.socket(socket.AF_INET, socket.SOCK_DGRAM)
        seen = manager.socket(socket.AF_INET, socket.SOCK_DGRAM)
        seen.bind((manager.address, 7003))
        seen.settimeout(2)
        udp.sendto(b"up", (manager.address, 7003))
        arrived.append(seen.recvfrom(16)[0])
        assert arrived == [b"up"]
        assert probe(worker, manager.address, 7000, 20, wait=0.5)[1] == 20
        udp.close()
        seen.close()

        net.heal()
        rtts, lost = probe(worker, manager.address, 7000, 20)
        assert lost == 0
    finally:
        echo.close()
        listener.close()


def test_a_crashed_run_s_namespaces_are_swept(hosts_available):
    gone = subprocess.Popen(["true"])
    gone.wait()  # a pid that no longer runs: a run that crashed
    name = f"{PREFIX}{gone.pid}beef-router"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        assert name in sweep_stale()
        assert not (NETNS_DIR / name).exists()
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


def test_traffic_is_counted_per_hop(lan):
    net, manager, worker = lan
    net.reset_traffic()
    listener = manager.socket()
    listener.bind((manager.address, 7004))
    listener.listen()
    got = []

    def serve():
        conn, _ = listener.accept()
        got.append(len(conn.recv(1 << 20, socket.MSG_WAITALL)))
        conn.close()
    server = threading.Thread(target=serve)
    server.start()
    client = worker.socket()
    client.connect((manager.address, 7004))
    client.sendall(b"x" * (1 << 20))
    client.close()
    server.join(30)
    listener.close()
    counts = net.traffic()
    assert got == [1 << 20]
    # 1 MiB of payload plus TCP/IP headers went up; only acknowledgements came back.
    assert (1 << 20) < counts[("render", "managers")] < 1.1 * (1 << 20), counts
    assert counts[("managers", "render")] < 0.1 * (1 << 20), counts

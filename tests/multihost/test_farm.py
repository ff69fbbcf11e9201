"""The farm across hosts: each project's artist submits from the workstation, in upload mode
(no shared disk); the job goes to the project's own Manager, runs on that Manager's worker
hosts and its frames come back from the Server. Everything talks over the LAN addresses.
"""

from __future__ import annotations

import socket
import struct

import pytest

from .jobs import download_outputs, make_blend, submit_upload
from .studio import Studio

pytestmark = pytest.mark.multihost


def peers(host, port: int) -> set[str]:
    """Remote addresses of the host's established TCP connections to its `port` (/proc/net/tcp)."""
    found = set()
    for line in host.run(["cat", "/proc/net/tcp"]).stdout.splitlines()[1:]:
        fields = line.split()
        local, remote, state = fields[1], fields[2], fields[3]
        if state == "01" and int(local.split(":")[1], 16) == port:
            found.add(socket.inet_ntoa(struct.pack("<I", int(remote.split(":")[0], 16))))
    return found


def test_each_project_renders_on_its_own_site(healthy_hosts_studio: Studio, tmp_path, blender_exe):
    st = healthy_hosts_studio
    blend = make_blend(blender_exe, "animation.py", tmp_path / "scene.blend", 3, 64, 48, 4)
    settings = {"filepath": "scene.blend", "frames": "1-3", "chunk_size": 2, "render_output": "frames/######",
                "format": "PNG"}
    jobs = {site.project: submit_upload(st.artist_api(site), "blender-render", f"{site.project} across hosts",
                                        settings, {"scene.blend": blend})
            for site in st.sites}

    workers = {w["id"]: w for w in st.api().workers()}
    for site in st.sites:
        api = st.artist_api(site)
        job = api.wait(jobs[site.project]["id"], timeout=240)
        assert job["project_name"] == site.project
        assert job["manager"] == site.manager_id
        ran_on = {workers[t["worker"]]["nickname"] for t in api.tasks(job["id"]) if t["worker"] in workers}
        assert ran_on and ran_on <= set(site.workers), (ran_on, site.workers)
        frames = download_outputs(api, job["id"], tmp_path / site.project)
        assert sorted(frames) == [f"frames/{n:06d}.png" for n in (1, 2, 3)]
        for path in frames.values():
            data = path.read_bytes()
            assert data[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", data[16:24]) == (64, 48)
        # The artist's CLI (README step 4) on the workstation lists it; the other project's does not.
        assert job["id"] in st.run_artist_cli(site)
        others = [s for s in st.sites if s is not site]
        assert all(job["id"] not in st.run_artist_cli(o) for o in others)

    # Each machine kept its own data, in its own directory.
    for host in st.net.hosts.values():
        if host.name in st.services:
            data = st.data_dir(host)
            assert data.is_relative_to(host.root) and any(data.iterdir()), data

    # Over the LANs, not loopback: each Manager's connections come from its worker hosts,
    # the Server's from the Managers and the workstation.
    for site in st.sites:
        manager = st.net.host(site.manager)
        assert peers(manager, 8083) <= {st.net.host(w).address for w in site.workers}
        assert peers(manager, 8083), "no worker is connected to its Manager"
    assert peers(st.server, 8080) <= {st.net.host(s.manager).address for s in st.sites} | {st.workstation.address}

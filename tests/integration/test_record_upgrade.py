"""An upgrade from the build before the typed container spec: its records (format 1: Docker's
Config/HostConfig JSON) load in a new daemon — a running container is re-adopted (live
restore) — and inspect shows what it showed; a record the daemon cannot read stays on disk."""

from __future__ import annotations

import json
import os
import shutil

import docker

from tests.conftest import needs_root, private_daemon, wait_for

pytestmark = needs_root


def client_for(handle):
    return docker.APIClient(base_url=handle.host, version="1.41", timeout=60)


def test_records_of_the_previous_format_load_after_an_upgrade():
    with private_daemon("pe-upgrade-") as handle:
        client = client_for(handle)
        running = client.create_container(
            "busybox", ["sleep", "1000"], name="pe-up-running", ports=[80], labels={"a": "b"},
            healthcheck={"test": ["CMD", "true"], "interval": 1_000_000_000},
            host_config=client.create_host_config(
                mem_limit="64m", port_bindings={80: ("127.0.0.1", None)}, restart_policy={"Name": "on-failure",
                                                                                           "MaximumRetryCount": 2},
                binds={"/tmp": {"bind": "/host-tmp", "mode": "ro"}}, tmpfs={"/run": "size=1m"},
                ulimits=[docker.types.Ulimit(name="nofile", soft=100, hard=200)], cap_add=["NET_ADMIN"]))["Id"]
        client.start(running)
        stopped = client.create_container("busybox", ["true"], name="pe-up-stopped", environment={"X": "1"})["Id"]
        before = {cid: client.inspect_container(cid) for cid in (running, stopped)}
        pid = before[running]["State"]["Pid"]

        handle.stop()  # live restore: the running container stays
        # Each record as the previous build wrote it: inspect's Config and HostConfig (whose
        # Links that build kept as given).
        for cid, shown in before.items():
            path = os.path.join(handle.data_root, "containers", cid, "config.v2.json")
            with open(path) as f:
                record = json.load(f)
            assert record["host_config"]["format"] == 2
            record["config"], record["host_config"] = shown["Config"], {**shown["HostConfig"], "Links": None}
            with open(path, "w") as f:
                json.dump(record, f)
        # a record this build cannot read: left in place, the daemon starts all the same
        broken = os.path.join(handle.data_root, "containers", "b" * 64)
        os.makedirs(broken)
        with open(os.path.join(broken, "config.v2.json"), "w") as f:
            json.dump({**record, "id": "b" * 64, "name": "pe-up-broken",
                       "host_config": {"Memory": "lots"}}, f)

        handle.start()
        client = client_for(handle)
        for cid, shown in before.items():
            now = client.inspect_container(cid)
            for key in ("Config", "HostConfig", "Mounts", "Name", "Path", "Args", "Image"):
                assert now[key] == shown[key], key
        assert client.inspect_container(running)["State"]["Pid"] == pid  # re-adopted, not restarted
        assert os.path.exists(os.path.join(broken, "config.v2.json"))
        assert "pe-up-broken" not in [n for c in client.containers(all=True) for n in c["Names"]]
        wait_for(lambda: client.inspect_container(running)["State"]["Health"]["Status"] == "healthy",
                 what="the re-adopted container's healthcheck")
        client.stop(running, timeout=1)
        with open(os.path.join(handle.data_root, "containers", running, "config.v2.json")) as f:
            assert json.load(f)["host_config"]["format"] == 2  # written back in the new format
        client.start(running)
        assert client.inspect_container(running)["State"]["Running"]
        client.remove_container(running, force=True)
        client.remove_container(stopped)
        shutil.rmtree(broken)

"""Named and anonymous volumes end to end, as root: a private daemon on a temp root, real
mounts; the local driver (with and without mount options) and the sample volume plugin."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time

import pytest

from tests.conftest import DaemonHandle, _mounts_under

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces, mounts)")


def _new_daemon(root: str, *args: str) -> DaemonHandle:
    handle = DaemonHandle(root)
    handle.extra_args = list(args)
    handle.start()
    r = handle.api("POST", "/images/bootstrap", params={"name": "busybox", "tag": "latest"})
    assert r.status_code == 201, r.text
    return handle


def _cleanup(handle: DaemonHandle, root: str) -> list[str]:
    return handle.discard()


@pytest.fixture(scope="module")
def vold():
    root = tempfile.mkdtemp(prefix="pe-voltest-")
    handle = _new_daemon(root)
    try:
        yield handle
    finally:
        leftovers = _cleanup(handle, root)
        assert not leftovers, f"mounts left behind: {leftovers}"


def cli(handle, *args, check=True, timeout=60):
    result = subprocess.run([sys.executable, "-m", "engine.cli", *args], env=handle.env(),
                            capture_output=True, text=True, timeout=timeout)
    if check:
        assert result.returncode == 0, (args, result.stdout, result.stderr, handle.log()[-3000:])
    return result


def run(handle, cmd: list[str], binds=(), mounts=(), volumes=None, remove=True, **host) -> tuple[str, int, str]:
    """create + start + wait via the API; (id, exit code, output)."""
    body = {"Image": "busybox", "Cmd": cmd, "Volumes": volumes,
            "HostConfig": {"Binds": list(binds) or None, "Mounts": list(mounts) or None, **host}}
    r = handle.api("POST", "/containers/create", json=body)
    assert r.status_code == 201, r.text
    cid = r.json()["Id"]
    r = handle.api("POST", f"/containers/{cid}/start")
    assert r.status_code == 204, r.text
    code = handle.api("POST", f"/containers/{cid}/wait").json()["StatusCode"]
    raw = handle.api("GET", f"/containers/{cid}/logs", params={"stdout": 1, "stderr": 1}).content
    out, i = b"", 0
    while i + 8 <= len(raw):
        size = int.from_bytes(raw[i + 4:i + 8], "big")
        out += raw[i + 8:i + 8 + size]
        i += 8 + size
    if remove:
        assert handle.api("DELETE", f"/containers/{cid}").status_code == 204
    return cid, code, out.decode()


def volume(handle, name: str) -> dict | None:
    r = handle.api("GET", f"/volumes/{name}")
    return r.json() if r.status_code == 200 else None


def test_volume_api_create_inspect_list_remove(vold):
    r = vold.api("POST", "/volumes/create", json={"Name": "crud1", "Labels": {"team": "a"}})
    assert r.status_code == 201, r.text
    v = r.json()
    assert v["Name"] == "crud1" and v["Driver"] == "local" and v["Scope"] == "local"
    assert v["Labels"] == {"team": "a"}
    assert v["Mountpoint"] == os.path.join(vold.data_root, "volumes", "crud1", "_data")
    assert os.path.isdir(v["Mountpoint"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", v["CreatedAt"])
    # Creating it again answers the same volume.
    assert vold.api("POST", "/volumes/create", json={"Name": "crud1"}).json()["CreatedAt"] == v["CreatedAt"]
    anon = vold.api("POST", "/volumes/create", json={}).json()
    assert re.fullmatch(r"[0-9a-f]{64}", anon["Name"])
    listing = vold.api("GET", "/volumes").json()
    assert listing["Warnings"] == []
    assert {"crud1", anon["Name"]} <= {x["Name"] for x in listing["Volumes"]}

    def names(filters):
        r = vold.api("GET", "/volumes", params={"filters": json.dumps(filters)})
        assert r.status_code == 200, r.text
        return {x["Name"] for x in r.json()["Volumes"]}

    assert names({"label": ["team=a"]}) == {"crud1"}
    assert "crud1" in names({"name": ["rud"]}) and anon["Name"] not in names({"name": ["rud"]})
    assert "crud1" in names({"driver": ["local"]}) and not names({"driver": ["nope"]})
    assert "crud1" in names({"dangling": ["true"]}) and "crud1" not in names({"dangling": ["false"]})
    assert vold.api("GET", "/volumes", params={"filters": json.dumps({"bogus": ["x"]})}).status_code == 400

    assert vold.api("POST", "/volumes/create", json={"Name": "x"}).status_code == 400
    assert vold.api("POST", "/volumes/create", json={"Name": "bad/name"}).status_code == 400
    r = vold.api("POST", "/volumes/create", json={"Name": "badopt", "DriverOpts": {"colour": "red"}})
    assert (r.status_code, r.json()["message"]) == (400, 'create badopt: invalid option: "colour"')
    r = vold.api("POST", "/volumes/create", json={"Name": "badrv", "Driver": "nosuchdriver"})
    assert (r.status_code, r.json()["message"]) == (
        404, 'create badrv: error looking up volume plugin nosuchdriver: plugin "nosuchdriver" not found')
    r = vold.api("POST", "/volumes/create", json={"Name": "crud1", "Driver": "nosuchdriver"})
    assert r.status_code in (404, 409)

    for name in ("crud1", anon["Name"]):
        assert vold.api("DELETE", f"/volumes/{name}").status_code == 204
    assert not os.path.exists(v["Mountpoint"])
    r = vold.api("GET", "/volumes/crud1")
    assert r.status_code == 404 and r.json()["message"] == "get crud1: no such volume"
    assert vold.api("DELETE", "/volumes/crud1").status_code == 404
    assert vold.api("DELETE", "/volumes/crud1", params={"force": "1"}).status_code == 204


def test_named_volume_created_on_first_use_and_data_persists(vold):
    cid, code, _ = run(vold, ["sh", "-c", "echo persisted > /data/f"], binds=["persist1:/data"], remove=False)
    assert code == 0
    mounts = vold.api("GET", f"/containers/{cid}/json").json()["Mounts"]
    assert mounts == [{"Type": "volume", "Name": "persist1",
                       "Source": os.path.join(vold.data_root, "volumes", "persist1", "_data"),
                       "Destination": "/data", "Driver": "local", "Mode": "z", "RW": True, "Propagation": ""}]
    assert vold.api("DELETE", f"/containers/{cid}", params={"v": "1"}).status_code == 204
    assert volume(vold, "persist1") is not None  # named volumes survive rm -v
    _, code, out = run(vold, ["cat", "/data/f"], binds=["persist1:/data"])
    assert (code, out) == (0, "persisted\n")
    r = vold.api("GET", "/events", params={"until": str(int(time.time()) + 1), "since": "0",
                                           "filters": json.dumps({"type": ["volume"], "volume": ["persist1"]})})
    actions = [json.loads(line)["Action"] for line in r.text.splitlines() if line.strip()]
    assert actions[:3] == ["create", "mount", "unmount"], actions
    assert vold.api("DELETE", "/volumes/persist1").status_code == 204
    assert _mounts_under(vold.root) == [vold.data_root]  # only the shared data root itself


def test_new_volume_gets_image_content_copied_up(vold):
    # /etc of the image goes into a new, empty volume; the per-container files still show.
    _, code, out = run(vold, ["sh", "-c", "head -1 /etc/passwd; cat /etc/hostname | wc -c"], binds=["etccopy:/etc"])
    assert code == 0 and out.startswith("root:x:0:0:")
    data = os.path.join(vold.data_root, "volumes", "etccopy", "_data")
    assert {"passwd", "group"} <= set(os.listdir(data))
    # A volume with content is not overwritten; /tmp's mode comes along into a new one.
    with open(os.path.join(data, "passwd"), "w") as f:
        f.write("mine\n")
    _, code, out = run(vold, ["cat", "/etc/passwd"], binds=["etccopy:/etc"])
    assert out == "mine\n"
    _, code, out = run(vold, ["stat", "-c", "%a", "/tmp"], binds=["tmpcopy:/tmp"])
    assert out.strip() == "1777"
    # nocopy: no copy-up.
    _, code, out = run(vold, ["ls", "/etc"], binds=["etcnocopy:/etc:nocopy"])
    assert "passwd" not in out
    for name in ("etccopy", "tmpcopy", "etcnocopy"):
        assert vold.api("DELETE", f"/volumes/{name}").status_code == 204


def test_readonly_volume_refuses_writes(vold):
    _, code, _ = run(vold, ["sh", "-c", "echo x > /data/f"], binds=["rovol:/data"])
    assert code == 0
    cid, code, out = run(vold, ["sh", "-c", "cat /data/f && echo y > /data/g"], binds=["rovol:/data:ro"], remove=False)
    # stdout ("x") and stderr (the shell's error) are separate pipes: their order in the log
    # is not defined, so look for each line, not for a sequence.
    assert code != 0 and "x" in out.splitlines() and "Read-only file system" in out
    mount = vold.api("GET", f"/containers/{cid}/json").json()["Mounts"][0]
    assert (mount["RW"], mount["Mode"]) == (False, "ro")
    vold.api("DELETE", f"/containers/{cid}")
    mount = {"Type": "volume", "Source": "rovol", "Target": "/data", "ReadOnly": True}
    _, code, out = run(vold, ["sh", "-c", "touch /data/h"], mounts=[mount])
    assert code != 0 and "Read-only file system" in out
    assert vold.api("DELETE", "/volumes/rovol").status_code == 204


def test_volume_in_use_cannot_be_removed(vold):
    cid, _, _ = run(vold, ["true"], binds=["busy1:/data"], remove=False)
    r = vold.api("DELETE", "/volumes/busy1")
    assert r.status_code == 409
    assert r.json()["message"] == f"remove busy1: volume is in use - [{cid}]"
    assert vold.api("DELETE", "/volumes/busy1", params={"force": "1"}).status_code == 409
    r = vold.api("POST", "/volumes/prune")
    assert "busy1" not in (r.json()["VolumesDeleted"] or [])
    vold.api("DELETE", f"/containers/{cid}")
    assert vold.api("DELETE", "/volumes/busy1").status_code == 204


def test_anonymous_volumes_removed_with_rm_v(vold):
    mount = {"Type": "volume", "Target": "/m"}
    cid, code, _ = run(vold, ["sh", "-c", "echo a > /anon/f"], volumes={"/anon": {}}, mounts=[mount], remove=False)
    assert code == 0
    mounts = vold.api("GET", f"/containers/{cid}/json").json()["Mounts"]
    names = {m["Destination"]: m["Name"] for m in mounts}
    assert set(names) == {"/anon", "/m"} and all(re.fullmatch(r"[0-9a-f]{64}", n) for n in names.values())
    data = os.path.join(vold.data_root, "volumes", names["/anon"], "_data", "f")
    assert open(data).read() == "a\n"
    assert vold.api("DELETE", f"/containers/{cid}", params={"v": "1"}).status_code == 204
    assert all(volume(vold, n) is None for n in names.values())
    # Without -v they stay (dangling), and prune removes them.
    cid, _, _ = run(vold, ["true"], volumes={"/anon": {}}, remove=False)
    name = vold.api("GET", f"/containers/{cid}/json").json()["Mounts"][0]["Name"]
    vold.api("DELETE", f"/containers/{cid}")
    assert volume(vold, name)["Labels"] == {"com.docker.volume.anonymous": ""}
    r = vold.api("POST", "/volumes/prune")
    assert name in r.json()["VolumesDeleted"]
    assert volume(vold, name) is None


def test_prune_label_filters_as_dockerd_applies_them(vold):
    """label selects the volumes with all its labels; label! keeps those with all of its."""
    for name, labels in (("pl-ab", {"a": "1", "b": "2"}), ("pl-a", {"a": "1"}), ("pl-none", {})):
        assert vold.api("POST", "/volumes/create", json={"Name": name, "Labels": labels}).status_code == 201

    def prune(**filters):
        r = vold.api("POST", "/volumes/prune", params={"filters": json.dumps({k.replace("_", "!"): v
                                                                               for k, v in filters.items()})})
        return {n for n in r.json()["VolumesDeleted"] or [] if n.startswith("pl-")}  # others' may go too

    assert prune(label=["a=1", "b"], label_=["nothing"]) == {"pl-ab"}
    assert prune(label_=["a=1"]) == {"pl-none"}
    assert prune() == {"pl-a"}


def test_prune_leaves_volumes_made_with_driver_options_as_dockerd(vold):
    """dockerd 20.10's prune skips a volume created with options (a tmpfs, a share): removing
    it reclaims nothing on the host."""
    body = {"Name": "po-tmpfs", "DriverOpts": {"type": "tmpfs", "device": "tmpfs", "o": "size=1m"}}
    assert vold.api("POST", "/volumes/create", json=body).status_code == 201
    assert vold.api("POST", "/volumes/create", json={"Name": "po-plain"}).status_code == 201
    deleted = vold.api("POST", "/volumes/prune").json()["VolumesDeleted"] or []
    assert "po-plain" in deleted and "po-tmpfs" not in deleted
    assert volume(vold, "po-tmpfs") is not None
    assert vold.api("DELETE", "/volumes/po-tmpfs").status_code == 204


def test_autoremove_removes_anonymous_volumes(vold):
    body = {"Image": "busybox", "Cmd": ["true"], "Volumes": {"/x": {}}, "HostConfig": {"AutoRemove": True}}
    before = {v["Name"] for v in vold.api("GET", "/volumes").json()["Volumes"]}
    cid = vold.api("POST", "/containers/create", json=body).json()["Id"]
    assert vold.api("POST", f"/containers/{cid}/start").status_code == 204
    vold.api("POST", f"/containers/{cid}/wait", params={"condition": "removed"})
    after = {v["Name"] for v in vold.api("GET", "/volumes").json()["Volumes"]}
    assert after == before


def test_tmpfs_option_volume(vold):
    r = vold.api("POST", "/volumes/create", json={
        "Name": "tmpvol", "DriverOpts": {"type": "tmpfs", "device": "tmpfs", "o": "size=8m"}})
    assert r.status_code == 201, r.text
    assert r.json()["Options"] == {"type": "tmpfs", "device": "tmpfs", "o": "size=8m"}
    _, code, out = run(vold, ["sh", "-c", "grep ' /data ' /proc/mounts; df -k /data | tail -1"], binds=["tmpvol:/data"])
    assert code == 0 and out.startswith("tmpfs /data tmpfs") and " 8192 " in out, out
    # Unmounted from the host once no container uses it.
    assert _mounts_under(os.path.join(vold.data_root, "volumes")) == []
    assert vold.api("DELETE", "/volumes/tmpvol").status_code == 204


def test_a_bind_volume_of_a_missing_device_fails_the_start_in_one_line(vold, tmp_path):
    missing = str(tmp_path / "missing")
    r = vold.api("POST", "/volumes/create", json={
        "Name": "badbind", "DriverOpts": {"type": "none", "device": missing, "o": "bind"}})
    assert r.status_code == 201, r.text
    cid = vold.api("POST", "/containers/create", json={
        "Image": "busybox", "Cmd": ["true"], "HostConfig": {"Binds": ["badbind:/m"]}}).json()["Id"]
    r = vold.api("POST", f"/containers/{cid}/start")
    assert r.status_code == 500
    message = r.json()["message"]
    assert "failed to mount local volume" in message and missing in message and "\n" not in message, message
    assert "dmesg" not in message
    assert vold.api("DELETE", f"/containers/{cid}").status_code == 204
    assert vold.api("DELETE", "/volumes/badbind").status_code == 204
    assert _mounts_under(os.path.join(vold.data_root, "volumes")) == []


def test_pyengine_cli_volume_commands(vold):
    assert cli(vold, "volume", "create", "--label", "k=v", "clivol").stdout.strip() == "clivol"
    out = cli(vold, "volume", "ls").stdout
    assert out.splitlines()[0].split() == ["DRIVER", "VOLUME", "NAME"] and "clivol" in out
    assert cli(vold, "volume", "ls", "-q", "--filter", "label=k=v").stdout.split() == ["clivol"]
    info = json.loads(cli(vold, "volume", "inspect", "clivol").stdout)
    assert info[0]["Labels"] == {"k": "v"}
    assert cli(vold, "volume", "inspect", "-f", "{{.Driver}}", "clivol").stdout.strip() == "local"
    out = cli(vold, "run", "--rm", "-v", "clivol:/data", "busybox", "sh", "-c", "echo hi > /data/x && cat /data/x")
    assert out.stdout == "hi\n"
    cli(vold, "run", "--name", "clivol-user", "-v", "clivol:/data", "busybox", "true")
    res = cli(vold, "volume", "rm", "clivol", check=False)
    assert res.returncode == 1 and "volume is in use" in res.stderr
    cli(vold, "rm", "clivol-user")
    assert cli(vold, "volume", "rm", "clivol").stdout.strip() == "clivol"
    cli(vold, "volume", "create", "prunable")
    out = cli(vold, "volume", "prune", "-f").stdout
    assert "prunable" in out and "Total reclaimed space" in out


def test_volume_data_survives_daemon_restart_and_no_mounts_left(tmp_path):
    root = str(tmp_path / "d")
    os.makedirs(root)
    handle = _new_daemon(root, "--no-live-restore")  # a graceful stop stops the container
    try:
        handle.api("POST", "/volumes/create", json={
            "Name": "tmpkeep", "DriverOpts": {"type": "tmpfs", "device": "tmpfs", "o": "size=4m"}})
        _, code, _ = run(handle, ["sh", "-c", "echo kept > /data/f"], binds=["keep:/data"])
        assert code == 0
        # A running container holds both volumes while the daemon stops.
        body = {"Image": "busybox", "Cmd": ["sleep", "60"],
                "HostConfig": {"Binds": ["keep:/data", "tmpkeep:/t"]}}
        cid = handle.api("POST", "/containers/create", json=body).json()["Id"]
        assert handle.api("POST", f"/containers/{cid}/start").status_code == 204
        assert _mounts_under(os.path.join(handle.data_root, "volumes"))  # the tmpfs
        handle.stop()
        assert _mounts_under(root) == []
        handle.start()
        assert {"keep", "tmpkeep"} <= {v["Name"] for v in handle.api("GET", "/volumes").json()["Volumes"]}
        assert handle.api("DELETE", "/volumes/keep").status_code == 409  # the stopped container
        _, code, out = run(handle, ["cat", "/data/f"], binds=["keep:/data"])
        assert (code, out) == (0, "kept\n")
        handle.api("DELETE", f"/containers/{cid}", params={"force": "1"})
        assert handle.api("DELETE", "/volumes/keep").status_code == 204
        assert handle.api("DELETE", "/volumes/tmpkeep").status_code == 204
    finally:
        leftovers = _cleanup(handle, root)
    assert leftovers == []


def test_remote_volume_plugin_end_to_end(tmp_path, monkeypatch):
    """The sample third-party driver (Docker's volume plugin protocol over a unix socket)."""
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "plugins", "sample-volume-driver"))
    from sample_volume_driver.server import serve

    plugin_dir = tmp_path / "plugins"
    plugin_dir.mkdir()
    server = serve(str(plugin_dir / "samplevol.sock"), str(tmp_path / "store"))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("PYENGINE_PLUGIN_DIRS", str(plugin_dir))
    root = str(tmp_path / "d")
    os.makedirs(root)
    handle = _new_daemon(root)
    try:
        cli(handle, "volume", "create", "-d", "samplevol", "-o", "seed=planted", "plugvol")
        assert os.path.isdir(tmp_path / "store" / "plugvol")
        info = volume(handle, "plugvol")
        assert info["Driver"] == "samplevol" and info["Mountpoint"] == str(tmp_path / "store" / "plugvol")
        out = cli(handle, "run", "--rm", "-v", "plugvol:/data", "busybox", "sh", "-c",
                  "cat /data/seed; echo from-container > /data/out").stdout
        assert out == "planted"
        assert (tmp_path / "store" / "plugvol" / "out").read_text() == "from-container\n"
        assert server.store.mounts["plugvol"] == set()  # unmounted after the run
        assert "VolumeDriver.Mount" in server.store.calls and "VolumeDriver.Unmount" in server.store.calls
        cli(handle, "volume", "rm", "plugvol")
        assert not os.path.exists(tmp_path / "store" / "plugvol")
        res = cli(handle, "volume", "create", "-d", "nosuchplugin", "x1", check=False)
        assert res.returncode != 0 and "plugin" in res.stderr
    finally:
        _cleanup(handle, root)
        server.shutdown()
        server.server_close()


def test_volumes_from_copies_the_sources_mounts(vold, tmp_path):
    """--volumes-from, as dockerd: the source's named and anonymous volumes and its binds (-v
    and --mount), running or not; ":ro" makes them all read-only; the container's own mount at
    a destination wins; a chain carries them on; the source's removal leaves them in place."""
    (tmp_path / "h").write_text("fromhost\n")
    bind_mount = {"Type": "bind", "Source": str(tmp_path), "Target": "/m2"}
    source, code, _ = run(vold, ["sh", "-c", "echo named > /data/f; echo anon > /anon/f"],
                          binds=["vfnamed:/data", f"{tmp_path}:/host"], mounts=[bind_mount],
                          volumes={"/anon": {}}, remove=False)
    assert code == 0
    try:
        _, code, out = run(vold, ["sh", "-c", "cat /data/f /anon/f /host/h /m2/h && touch /data/rw /m2/rw"],
                           VolumesFrom=[source])
        assert code == 0, out
        assert out.split() == ["named", "anon", "fromhost", "fromhost"]
        assert (tmp_path / "rw").exists()
        _, code, out = run(vold, ["sh", "-c", "for d in data anon host m2; do touch /$d/x 2>/dev/null "
                                  "|| echo ro-$d; done; cat /data/f"], VolumesFrom=[f"{source}:ro"])
        assert out.split() == ["ro-data", "ro-anon", "ro-host", "ro-m2", "named"], out
        # the container's own -v at /data wins; the rest still comes from the source
        _, code, out = run(vold, ["sh", "-c", "ls /data; cat /anon/f"], binds=["vfother:/data"],
                           VolumesFrom=[source])
        assert out.split() == ["anon"]

        r = vold.api("POST", "/containers/create", json={"Image": "busybox", "Cmd": ["cat", "/data/f", "/host/h"],
                                                           "HostConfig": {"VolumesFrom": [f"{source}:ro"]}})
        assert r.status_code == 201, r.text
        middle = r.json()["Id"]
        info = vold.api("GET", f"/containers/{middle}/json").json()
        assert info["HostConfig"]["VolumesFrom"] == [f"{source}:ro"] and info["HostConfig"]["Binds"] is None
        mounts = {m["Destination"]: m for m in info["Mounts"]}
        assert set(mounts) == {"/data", "/anon", "/host", "/m2"}
        assert mounts["/data"]["Name"] == "vfnamed" and mounts["/data"]["Type"] == "volume"
        assert mounts["/host"] == {"Type": "bind", "Source": str(tmp_path), "Destination": "/host", "Mode": "",
                                   "RW": False, "Propagation": "rprivate"}
        assert not any(m["RW"] for m in mounts.values())

        # removing the source (with -v) keeps what the others copied: in use, not removed
        assert vold.api("DELETE", f"/containers/{source}", params={"v": "1"}).status_code == 204
        source = None
        assert vold.api("DELETE", "/volumes/vfnamed").status_code == 409
        _, code, out = run(vold, ["sh", "-c", "cat /data/f /anon/f /host/h; touch /data/y 2>/dev/null || echo ro"],
                           VolumesFrom=[middle])  # a chain: the middle one's mounts, read-only
        assert out.split() == ["named", "anon", "fromhost", "ro"], out
        vold.api("DELETE", f"/containers/{middle}", params={"v": "1"})
    finally:
        if source is not None:
            vold.api("DELETE", f"/containers/{source}", params={"v": "1", "force": "1"})
    for name in ("vfnamed", "vfother"):
        assert vold.api("DELETE", f"/volumes/{name}").status_code == 204


@pytest.mark.parametrize("spec, message", [
    ("pe-no-such", "No such container: pe-no-such"),
    ("", "volumes-from specification cannot be an empty string"),
    ("x:rshared", "invalid mode: rshared"),
    ("x:ro,rw", "invalid mode: ro,rw"),
])
def test_volumes_from_refuses_what_dockerd_refuses(vold, spec, message):
    body = {"Image": "busybox", "Cmd": ["true"], "HostConfig": {"VolumesFrom": [spec]}}
    r = vold.api("POST", "/containers/create", json=body)
    assert (r.status_code, r.json()["message"]) == (400, message)

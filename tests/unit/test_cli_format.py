"""Formatting helpers of the CLI: go-units, tables, frames, templates, filters, errors."""

import json

import pytest

from engine.cli._client import ClientError, ConnectError, error_message, parse_host
from engine.cli._containers import cpu_percent, display_ports, ps_row, stats_row
from engine.cli._copy import _rebase, split_spec, stat_is_dir
from engine.cli._events import format_event
from engine.cli._format import (Demuxer, TemplateError, bytes_size, demux, ellipsis,
                                familiar_ref, filters_param, frame, human_duration, human_size,
                                parse_api_time, parse_duration, parse_filters, parse_ref,
                                parse_timestamp, ram_in_bytes, render, render_rows, tabulate)
from engine.cli._images import image_rows


@pytest.mark.parametrize("seconds,text", [
    (0, "Less than a second"), (0.9, "Less than a second"), (1, "1 second"),
    (3, "3 seconds"), (59, "59 seconds"), (60, "About a minute"), (119, "About a minute"),
    (120, "2 minutes"), (59 * 60, "59 minutes"), (3600, "About an hour"),
    (5400, "2 hours"), (47 * 3600, "47 hours"), (48 * 3600, "2 days"),
    (13 * 86400, "13 days"), (14 * 86400, "2 weeks"), (60 * 86400, "2 months"),
    (800 * 86400, "2 years"),
])
def test_human_duration(seconds, text):
    assert human_duration(seconds) == text


@pytest.mark.parametrize("size,text", [
    (0, "0B"), (999, "999B"), (1000, "1kB"), (1234567, "1.23MB"), (4_200_000, "4.2MB"),
    (1_000_000_000, "1GB"), (123_456_789_012, "123GB"), (999_999, "1e+03kB"),
])
def test_human_size(size, text):
    assert human_size(size) == text


def test_bytes_size_and_ram():
    assert bytes_size(67108864) == "64MiB"
    assert bytes_size(1536) == "1.5KiB"
    assert bytes_size(0) == "0B"
    assert ram_in_bytes("64m") == 67108864
    assert ram_in_bytes("1g") == 1 << 30
    assert ram_in_bytes("512k") == 512 * 1024
    assert ram_in_bytes("1.5GB") == int(1.5 * (1 << 30))
    assert ram_in_bytes("100") == 100
    with pytest.raises(ValueError, match="invalid size: '12q'"):
        ram_in_bytes("12q")


def test_durations_and_timestamps():
    assert parse_duration("1m30s") == 90
    assert parse_duration("1.5h") == 5400
    assert parse_timestamp("10m", now=1000.0) == "400.000000000"
    assert parse_timestamp("1700000000") == "1700000000"
    assert parse_timestamp("2024-01-01T00:00:00Z") == "1704067200.000000000"
    assert parse_api_time("2024-01-01T00:00:00.123456789Z") == pytest.approx(1704067200.123457)
    assert parse_api_time("0001-01-01T00:00:00Z") is None
    assert parse_api_time(5) == 5.0


def test_demux_incremental():
    data = frame(1, b"hello ") + frame(2, b"err\n") + frame(1, b"") + frame(1, b"world\n")
    assert demux(data) == [(1, b"hello "), (2, b"err\n"), (1, b""), (1, b"world\n")]
    d = Demuxer()
    got = []
    for i in range(len(data)):  # one byte at a time
        got += d.feed(data[i:i + 1])
    assert got == demux(data) and d.pending == 0
    assert data[:8] == b"\x01\x00\x00\x00\x00\x00\x00\x06"
    big = frame(1, b"x" * 70000)
    assert Demuxer().feed(big[:100]) == []


INSPECT = {"Id": "abc", "State": {"Status": "running", "Pid": 42, "Running": True},
           "Config": {"Env": ["A=1"], "Labels": {"b": "2", "a": "1"}, "Cmd": None},
           "NetworkSettings": {"IPAddress": "172.17.0.2"}}


@pytest.mark.parametrize("tmpl,out", [
    ("{{.State.Status}}", "running"),
    ("{{.Id}}", "abc"),
    ("{{ .State.Pid }}/{{.State.Running}}", "42/true"),
    ("{{json .Config}}", '{"Env":["A=1"],"Labels":{"b":"2","a":"1"},"Cmd":null}'),
    ("{{.NetworkSettings.IPAddress}}", "172.17.0.2"),
    ("{{.Config.Labels}}", "map[a:1 b:2]"),
    ("{{.Config.Env}}", "[A=1]"),
    ("{{.Config.Cmd}}", "<nil>"),
    ("{{.Missing}}", "<no value>"),
    ('{{index .Config.Labels "a"}}', "1"),
    ("{{.State.Status | upper}}", "RUNNING"),
    ('{{join .Config.Env ","}}', "A=1"),
    ("id={{.Id}} ip={{.NetworkSettings.IPAddress}}", "id=abc ip=172.17.0.2"),
    ("{{json .}}", json.dumps(INSPECT, separators=(",", ":"))),
])
def test_template(tmpl, out):
    assert render(tmpl, INSPECT) == out


def test_template_errors():
    with pytest.raises(TemplateError):
        render("{{nosuchfunc .Id}}", INSPECT)
    with pytest.raises(TemplateError):
        render("{{.Id", INSPECT)


def test_render_rows_table_and_plain():
    rows = [{"ID": "abc", "Names": "web"}, {"ID": "defghijklmnop", "Names": "db"}]
    headers = {"ID": "CONTAINER ID", "Names": "NAMES"}
    assert render_rows("table {{.ID}}\\t{{.Names}}", rows, headers) == (
        "CONTAINER ID    NAMES\n"
        "abc             web\n"
        "defghijklmnop   db\n")
    assert render_rows("{{.Names}}", rows, headers) == "web\ndb\n"


def test_tabulate_minwidth():
    assert tabulate([["A", "B", "C"], ["x", "yy", "z"]]) == "A         B         C\n" \
                                                          "x         yy        z\n"


def test_filters():
    assert parse_filters(["status=exited", "label=a=b", "status=created", "status=exited"]) == {
        "status": ["exited", "created"], "label": ["a=b"]}
    assert json.loads(filters_param(["name=web"])) == {"name": ["web"]}
    assert filters_param([]) is None
    with pytest.raises(ValueError, match="bad format of filter"):
        parse_filters(["nonsense"])


def test_refs():
    assert parse_ref("localhost:5000/foo/bar:1.0") == ("localhost:5000/foo/bar", "1.0", None)
    assert parse_ref("localhost:5000/foo") == ("localhost:5000/foo", None, None)
    assert parse_ref("busybox@sha256:abc") == ("busybox", None, "sha256:abc")
    assert familiar_ref("busybox") == "busybox:latest"
    assert familiar_ref("debian:bookworm") == "debian:bookworm"


def test_error_messages():
    assert str(ClientError(error_message(b'{"message":"No such container: x"}', 404), 404)) \
        == "Error response from daemon: No such container: x"
    assert error_message(b"plain text\n", 500) == "plain text"
    assert error_message(b"", 502) == "HTTP 502"
    assert str(ConnectError("unix:///run/pyengine/pyengine.sock")) == (
        "Cannot connect to the pyengine daemon at unix:///run/pyengine/pyengine.sock. "
        "Is the daemon running?")
    assert parse_host("unix:///x.sock") == ("unix", "/x.sock")
    assert parse_host("tcp://127.0.0.1") == ("tcp", "127.0.0.1:2375")
    assert parse_host("tcp://[::1]:2376") == ("tcp", "[::1]:2376")


def test_ps_row():
    c = {"Id": "0123456789abcdef", "Names": ["/web", "/other/alias"],
         "Image": "sha256:" + "f" * 64, "Command": "sleep 1000000000000000000000",
         "Created": 1000, "State": "exited", "Status": "Exited (137) 5 seconds ago",
         "Ports": [{"PrivatePort": 53, "Type": "udp"},
                   {"IP": "::", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
                   {"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"}],
         "Labels": {"z": "1", "a": "2"}}
    row = ps_row(c, now=1000 + 90)
    assert row["ID"] == "0123456789ab"
    assert row["Image"] == "ffffffffffff"
    assert row["Command"] == '"sleep 1000000000000…"'
    assert row["RunningFor"] == "About a minute ago"
    assert row["Names"] == "web"
    assert row["Labels"] == "a=2,z=1"
    assert row["Ports"] == "53/udp, 0.0.0.0:8080->80/tcp, [::]:8080->80/tcp"
    full = ps_row(c, trunc=False, now=1090)
    assert full["ID"] == c["Id"] and full["Names"] == "web,other/alias"
    assert ellipsis("abc", 2) == "a…"
    assert display_ports([]) == ""


def test_stats_row():
    s = {"id": "0123456789abcdef", "name": "/web",
         "cpu_stats": {"cpu_usage": {"total_usage": 300_000_000}, "system_cpu_usage": 2_000_000_000,
                       "online_cpus": 2},
         "precpu_stats": {"cpu_usage": {"total_usage": 100_000_000},
                          "system_cpu_usage": 1_000_000_000},
         "memory_stats": {"usage": 10 * 1024 * 1024, "limit": 64 * 1024 * 1024,
                          "stats": {"total_inactive_file": 2 * 1024 * 1024}},
         "networks": {"eth0": {"rx_bytes": 1500, "tx_bytes": 0},
                      "eth1": {"rx_bytes": 500, "tx_bytes": 2_500_000}},
         "blkio_stats": {"io_service_bytes_recursive": [{"op": "Read", "value": 4096},
                                                         {"op": "Write", "value": 1_000_000}]},
         "pids_stats": {"current": 3}}
    assert cpu_percent(s) == pytest.approx(40.0)
    assert stats_row(s) == {"ID": "0123456789ab", "Container": "0123456789ab", "Name": "web",
                            "CPUPerc": "40.00%", "MemUsage": "8MiB / 64MiB", "MemPerc": "12.50%",
                            "NetIO": "2kB / 2.5MB", "BlockIO": "4.1kB / 1MB", "PIDs": "3"}


def test_image_rows():
    imgs = [{"Id": "sha256:" + "1" * 64, "RepoTags": ["busybox:latest", "localhost:5000/bb:v1"],
             "Created": 100, "Size": 4_261_550},
            {"Id": "sha256:" + "2" * 64, "RepoTags": None, "Created": 100, "Size": 0}]
    rows = image_rows(imgs, now=100 + 3 * 86400)
    assert [(r["Repository"], r["Tag"], r["ID"], r["CreatedSince"], r["Size"]) for r in rows] == [
        ("busybox", "latest", "111111111111", "3 days ago", "4.26MB"),
        ("localhost:5000/bb", "v1", "111111111111", "3 days ago", "4.26MB"),
        ("<none>", "<none>", "222222222222", "3 days ago", "0B"),
    ]


def test_event_line(monkeypatch):
    import os
    import time
    old = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    try:
        ev = {"Type": "container", "Action": "start", "time": 1704067200,
              "timeNano": 1704067200000000123,
              "Actor": {"ID": "abc", "Attributes": {"name": "web", "image": "busybox"}}}
        assert format_event(ev) == ("2024-01-01T00:00:00.000000123Z container start abc "
                                    "(image=busybox, name=web)")
        ev2 = {"Type": "network", "Action": "connect", "time": 1704067200, "Actor": {"ID": "n"}}
        assert format_event(ev2) == "2024-01-01T00:00:00.000000000Z network connect n"
    finally:
        if old is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = old
        time.tzset()


def test_cp_helpers():
    assert split_spec("web:/etc/hosts") == ("web", "/etc/hosts")
    assert split_spec("./a:b") == (None, "./a:b")
    assert split_spec("/tmp/x") == (None, "/tmp/x")
    assert _rebase("hostname", "hostname", "copied") == "copied"
    assert _rebase("dir/sub/f", "dir", "new") == "new/sub/f"
    assert _rebase("dir/sub/f", "dir", "") == "sub/f"
    assert _rebase("dir", "dir", "") is None
    assert stat_is_dir({"mode": (1 << 31) | 0o755})
    assert stat_is_dir({"mode": 0o40755})
    assert not stat_is_dir({"mode": 0o644})

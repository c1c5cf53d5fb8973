"""Attachment records on disk: typed in memory, the record format every earlier build wrote
and reads (so upgrades and downgrades keep a container's networks)."""

import json

import pytest

from engine import errors
from engine.networks import Attachment, EndpointSettings, Network
from engine.networks.attachments import AttachmentStore, validate


def test_saved_records_keep_the_format_earlier_builds_read(tmp_path):
    store = AttachmentStore(str(tmp_path))
    settings = EndpointSettings(aliases=["web"], links=["db:database"], ipv4_address="172.30.0.5",
                                ipv6_address="fd00::5", link_local_ips=["169.254.1.1"], mac_address="02:42:ac:1e:00:05",
                                driver_opts={"k": "v"})
    store.save("c1", [Attachment("n1", settings), Attachment("n2")])
    with open(tmp_path / "c1.json") as f:
        assert json.load(f) == [
            {"NetworkID": "n1", "Aliases": ["web"], "Links": ["db:database"],
             "IPAMConfig": {"IPv4Address": "172.30.0.5", "IPv6Address": "fd00::5", "LinkLocalIPs": ["169.254.1.1"]},
             "MacAddress": "02:42:ac:1e:00:05", "DriverOpts": {"k": "v"}},
            {"NetworkID": "n2", "Aliases": [], "Links": [], "IPAMConfig": None, "MacAddress": "",
             "DriverOpts": None},
        ]
    again = AttachmentStore(str(tmp_path))
    again.load()
    assert again.get("c1") == [Attachment("n1", settings), Attachment("n2")]


def test_records_from_before_links_and_ipv6_load(tmp_path):
    (tmp_path / "c1.json").write_text(json.dumps([
        {"NetworkID": "n1", "Aliases": ["a"], "IPAMConfig": {"IPv4Address": "10.0.0.2"}},
        {"NetworkID": "n2"},
    ]))
    (tmp_path / "c2.json").write_text("{not json")
    store = AttachmentStore(str(tmp_path))
    store.load()
    assert store.get("c1") == [Attachment("n1", EndpointSettings(aliases=["a"], ipv4_address="10.0.0.2")),
                               Attachment("n2")]
    assert store.get("c2") == []


def test_forgetting_every_attachment_removes_the_record(tmp_path):
    store = AttachmentStore(str(tmp_path))
    store.save("c1", [Attachment("n1")])
    store.save("c1", [])
    assert store.get("c1") == [] and not (tmp_path / "c1.json").exists()


def test_default_bridge_refuses_aliases_and_addresses():
    bridge = Network(id="b", name="bridge", driver="bridge", created="", subnet="172.17.0.0/16",
                     gateway="172.17.0.1", builtin=True)
    with pytest.raises(errors.InvalidParameter, match="network-scoped alias"):
        validate(bridge, EndpointSettings(aliases=["x"]))
    with pytest.raises(errors.InvalidParameter, match="user defined networks only"):
        validate(bridge, EndpointSettings(ipv4_address="172.17.0.9"))
    validate(bridge, EndpointSettings())

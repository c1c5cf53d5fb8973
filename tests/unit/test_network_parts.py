"""Network pieces without root: Docker JSON → typed specs, pool validation, AAAA answers,
legacy link variables."""

from __future__ import annotations

import struct

import pytest

from engine import errors
from engine.api.networks import endpoint_settings, endpoints_config, network_spec
from engine.networks import IpamPool, links
from engine.networks.addressing import split_pools
from engine.networks.dns import TYPE_A, TYPE_AAAA, build_response, parse_question


def test_network_spec_from_docker_json():
    spec = network_spec({"Name": "n", "EnableIPv6": True, "Labels": {"a": "b"}, "Options": {"o": "1"},
                         "IPAM": {"Driver": "default", "Options": {"i": "2"}, "Config": [
                             {"Subnet": "fd00:1::/64", "Gateway": "fd00:1::1", "AuxiliaryAddresses": {"x": "fd00:1::5"}}]}})
    assert spec.enable_ipv6 and spec.labels == {"a": "b"} and spec.ipam_options == {"i": "2"}
    assert spec.pools == [IpamPool(subnet="fd00:1::/64", gateway="fd00:1::1", aux_addresses={"x": "fd00:1::5"})]


@pytest.mark.parametrize("body", [{"Name": "n", "Labels": ["a=b"]}, {"Name": "n", "Options": {"a": 1}},
                                  {"Name": "n", "EnableIPv6": "yes"}, {"Name": "n", "IPAM": {"Config": {}}}])
def test_network_spec_wrong_json_types_are_invalid(body):
    with pytest.raises(errors.InvalidParameter):
        network_spec(body)


def test_endpoint_settings_and_container_mac_go_to_the_primary_network():
    s = endpoint_settings({"Aliases": ["a"], "Links": ["db:d"], "MacAddress": "02:00:00:00:00:01",
                           "IPAMConfig": {"IPv6Address": "fd00::5", "LinkLocalIPs": ["169.254.1.1"]}})
    assert (s.aliases, s.links, s.ipv6_address, s.link_local_ips) == (["a"], ["db:d"], "fd00::5", ["169.254.1.1"])
    out = endpoints_config({"MacAddress": "02:00:00:00:00:02", "HostConfig": {"NetworkMode": "net1"}})
    assert out["net1"].mac_address == "02:00:00:00:00:02"


@pytest.mark.parametrize("pools", [
    [IpamPool(subnet="10.0.0.0/24", gateway="10.0.1.1")],
    [IpamPool(subnet="10.0.0.0/24", ip_range="10.0.1.0/28")],
    [IpamPool(subnet="10.0.0.0/24", aux_addresses={"a": "10.9.0.1"})],
    [IpamPool(subnet="10.0.0.0/24"), IpamPool(subnet="10.0.2.0/24")],
    [IpamPool(gateway="10.0.0.1")],
])
def test_inconsistent_pools_are_refused(pools):
    with pytest.raises(errors.InvalidParameter):
        split_pools(pools)


def test_split_pools_by_family():
    v4, v6 = split_pools([IpamPool(subnet="fd00::/64"), IpamPool(subnet="10.0.0.0/24")])
    assert v4.subnet == "10.0.0.0/24" and v6.subnet == "fd00::/64"


def _query(name: str, qtype: int) -> bytes:
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    return struct.pack("!HHHHHH", 7, 0x0100, 1, 0, 0, 0) + labels + struct.pack("!HH", qtype, 1)


def test_aaaa_and_a_records_carry_their_family():
    query = _query("web", TYPE_AAAA)
    _, _, name, qtype, _, end = parse_question(query)
    reply = build_response(query, end, 0, ["fd00::10"])
    assert struct.unpack("!H", reply[6:8])[0] == 1
    rtype, _, _, length = struct.unpack("!HHIH", reply[end + 2:end + 12])
    assert (rtype, length, reply[-16:]) == (TYPE_AAAA, 16, bytes.fromhex("fd000000000000000000000000000010"))
    reply = build_response(_query("web", TYPE_A), end, 0, ["10.0.0.2"])
    assert reply[-4:] == bytes([10, 0, 0, 2]) and struct.unpack("!H", reply[end + 2:end + 4])[0] == TYPE_A


def test_link_parsing_and_legacy_environment():
    assert links.parse("db:alias") == ("db", "alias")
    assert links.parse("/db:/web/alias") == ("db", "alias")
    assert links.parse("db") == ("db", "db")
    assert links.resolve_alias({"bar": "upstream"}, "bar") == "upstream"

    class C:
        name = "web"

    link = links.LegacyLink(alias="my-db", name="db", hostname="h", ip="10.0.0.9",
                            exposed=(("5432", "tcp"), ("53", "udp")), env=("PATH=/x", "PW=1"))
    env = links.environment(C(), [link])
    assert env[0] == "MY_DB_PORT=tcp://10.0.0.9:5432"
    assert {"MY_DB_PORT_53_UDP_PROTO=udp", "MY_DB_NAME=/web/my-db", "MY_DB_ENV_PW=1"} <= set(env)
    assert not any(e.startswith("MY_DB_ENV_PATH") for e in env)
    assert links.hosts_entries([link]) == "10.0.0.9\tmy-db h db\n"

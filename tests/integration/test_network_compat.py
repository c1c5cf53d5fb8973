"""What docker-py's network suite and the docker CLI expect of networks, end to end as root: IPv6
(unique-local subnets this module creates), full IPAM config, driver and endpoint options,
links, MAC and link-local addresses, connect/disconnect, prune filters, inspect fields. A
private daemon per module; traffic only between the module's own containers."""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from tests.conftest import private_daemon

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces, netlink, nftables)")

ULA = "fd5e:c0de:77::/64"  # unique-local: never routed beyond this host


def _links() -> set[str]:
    out = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if ":" in line}


@pytest.fixture(scope="module")
def compatd():
    with private_daemon("pe-netcompat-") as handle:
        links_before = _links()
        yield handle
        for c in handle.api("GET", "/containers/json", params={"all": "1"}).json():
            handle.api("DELETE", f"/containers/{c['Id']}", params={"force": "1"})
        handle.api("POST", "/networks/prune")
        handle.stop()
        from engine.networks import daemon_tag

        ours = tuple(prefix + daemon_tag(handle.data_root) for prefix in ("pb", "pv", "pc")) + ("pncbr",)
        leaked = {name for name in _links() - links_before if name.startswith(ours)}  # not other daemons
        assert leaked == set(), handle.log()


@pytest.fixture
def api(compatd):
    """docker-py's APIClient; what a test creates is removed after it, even on failure."""
    import docker

    client = docker.APIClient(base_url=compatd.host, version="1.41", timeout=60)
    client.made_networks = []
    yield client
    for c in client.containers(all=True):
        client.remove_container(c["Id"], force=True)
    for net in client.made_networks:
        try:
            client.remove_network(net)
        except docker.errors.NotFound:
            pass
    client.close()


def _net(api, name, **kwargs) -> str:
    net_id = api.create_network(name, **kwargs)["Id"]
    api.made_networks.append(net_id)
    return net_id


def _run(api, name=None, command="sleep 300", **kwargs) -> str:
    cid = api.create_container("busybox", command, name=name, **kwargs)["Id"]
    api.start(cid)
    return cid


def _exec(api, cid, cmd) -> tuple[int, str]:
    exe = api.exec_create(cid, cmd)
    out = api.exec_start(exe).decode()
    return api.exec_inspect(exe)["ExitCode"], out


def _until_ok(api, cid, cmd, timeout: float = 20.0) -> str:
    """Run `cmd` in `cid` until it exits 0 (a loaded machine can drop a first probe)."""
    deadline = time.monotonic() + timeout
    while True:
        code, out = _exec(api, cid, cmd)
        if code == 0:
            return out
        assert time.monotonic() < deadline, out


def test_ipv6_network_fixed_addresses_ping_and_aaaa(api):
    from docker.types import IPAMConfig, IPAMPool

    net_id = _net(api, "nc-v6", enable_ipv6=True, ipam=IPAMConfig(pool_configs=[
        IPAMPool(subnet="10.250.61.0/24"), IPAMPool(subnet=ULA, gateway="fd5e:c0de:77::fffe")]))
    net = api.inspect_network(net_id)
    assert net["EnableIPv6"] is True
    assert {"Subnet": ULA, "Gateway": "fd5e:c0de:77::fffe"} in net["IPAM"]["Config"]
    server = _run(api, "nc-v6-server", host_config=api.create_host_config(network_mode="nc-v6"),
                  networking_config=api.create_networking_config(
                      {"nc-v6": api.create_endpoint_config(ipv6_address="fd5e:c0de:77::10")}))
    settings = api.inspect_container(server)["NetworkSettings"]["Networks"]["nc-v6"]
    assert settings["GlobalIPv6Address"] == "fd5e:c0de:77::10"
    assert settings["GlobalIPv6PrefixLen"] == 64 and settings["IPv6Gateway"] == "fd5e:c0de:77::fffe"
    assert settings["IPAMConfig"] == {"IPv6Address": "fd5e:c0de:77::10"}
    member = api.inspect_network(net_id)["Containers"][server]
    assert member["IPv6Address"] == "fd5e:c0de:77::10/64" and member["IPv4Address"].startswith("10.250.61.")
    code, out = _exec(api, server, ["ip", "-6", "addr", "show", "eth0"])
    assert "fd5e:c0de:77::10/64" in out and "tentative" not in out.split("scope global")[0]
    client = _run(api, host_config=api.create_host_config(network_mode="nc-v6"))
    code, out = _exec(api, client, ["ip", "-6", "route"])
    assert "default via fd5e:c0de:77::fffe" in out, out
    assert _until_ok(api, client, ["ping6", "-c1", "-W5", "fd5e:c0de:77::10"])
    code, out = _exec(api, client, ["nslookup", "-type=AAAA", "nc-v6-server"])
    assert code == 0 and "fd5e:c0de:77::10" in out, out
    code, out = _exec(api, client, ["nslookup", "-type=A", "nc-v6-server"])
    assert "fd5e:c0de:77::10" not in out and settings["IPAddress"] in out, out


def test_ipv6_without_subnet_gets_a_unique_local_pool(api):
    net = api.inspect_network(_net(api, "nc-v6auto", enable_ipv6=True))
    subnets = [c["Subnet"] for c in net["IPAM"]["Config"]]
    assert len(subnets) == 2 and subnets[1].startswith("fd") and subnets[1].endswith("/64")


def test_ipv6_pool_without_enable_ipv6_hands_out_no_ipv6(api):
    """libnetwork: the pool is kept (inspect shows it) but addresses need EnableIPv6."""
    from docker.types import IPAMConfig, IPAMPool

    net_id = _net(api, "nc-v6off", ipam=IPAMConfig(pool_configs=[IPAMPool(subnet="fd5e:c0de:78::/64")]))
    assert api.inspect_network(net_id)["EnableIPv6"] is False
    cid = _run(api, host_config=api.create_host_config(network_mode="nc-v6off"),
               networking_config=api.create_networking_config(
                   {"nc-v6off": api.create_endpoint_config(ipv6_address="fd5e:c0de:78::5")}))
    settings = api.inspect_container(cid)["NetworkSettings"]["Networks"]["nc-v6off"]
    assert settings["IPAMConfig"]["IPv6Address"] == "fd5e:c0de:78::5" and settings["GlobalIPv6Address"] == ""


def test_ipam_config_shown_as_given_and_aux_addresses_never_handed_out(api):
    from docker.types import IPAMConfig, IPAMPool

    pool = IPAMPool(subnet="10.250.62.0/24", iprange="10.250.62.0/30", gateway="10.250.62.254",
                    aux_addresses={"router": "10.250.62.1"})
    net_id = _net(api, "nc-ipam", ipam=IPAMConfig(pool_configs=[pool], options={"opt": "1"}),
                  options={"com.docker.network.bridge.name": "pncbr0"}, labels={"a": "b"})
    net = api.inspect_network(net_id)
    assert net["IPAM"] == {"Driver": "default", "Options": {"opt": "1"}, "Config": [{
        "Subnet": "10.250.62.0/24", "IPRange": "10.250.62.0/30", "Gateway": "10.250.62.254",
        "AuxiliaryAddresses": {"router": "10.250.62.1"}}]}
    assert net["Options"] == {"com.docker.network.bridge.name": "pncbr0"} and net["Labels"] == {"a": "b"}
    assert "pncbr0" in _links()
    hc = api.create_host_config(network_mode="nc-ipam")
    first = api.inspect_container(_run(api, host_config=hc))["NetworkSettings"]["Networks"]["nc-ipam"]
    second = api.inspect_container(_run(api, host_config=hc))["NetworkSettings"]["Networks"]["nc-ipam"]
    # .0 is the network, .1 auxiliary: the /30 range has .2 and .3 left
    assert {first["IPAddress"], second["IPAddress"]} == {"10.250.62.2", "10.250.62.3"}
    assert first["Gateway"] == "10.250.62.254"


@pytest.mark.parametrize("body, words", [
    ({"Name": "nc-bad", "Labels": ["a=b"]}, "Labels"),
    ({"Name": "nc-bad", "Options": {"x": 1}}, "Options"),
    ({"Name": "nc-bad", "IPAM": {"Config": [{"Subnet": "10.250.63.0/24", "Gateway": "10.9.9.9"}]}}, "gateway"),
    ({"Name": "nc-bad", "IPAM": {"Config": [{"Subnet": "10.250.63.0/24", "IPRange": "10.250.64.0/28"}]}}, "ip-range"),
    ({"Name": "nc-bad", "IPAM": {"Config": [{"Subnet": "not-a-subnet"}]}}, "subnet"),
])
def test_create_refuses_wrong_types_and_inconsistent_pools_with_400(compatd, body, words):
    response = compatd.api("POST", "/networks/create", json=body)
    assert response.status_code == 400, response.text
    assert words in response.json()["message"]
    assert compatd.api("GET", "/networks/nc-bad").status_code == 404


@pytest.mark.parametrize("body, status, message", [
    ({"Name": "nc-bad", "IPAM": {"Config": [{"Subnet": "10.1.0.0/33"}]}}, 400,
     "Invalid subnet 10.1.0.0/33 : invalid CIDR address: 10.1.0.0/33"),
    ({"Name": "nc-bad", "Driver": "null"}, 403, 'only one instance of "null" network is allowed'),
    ({"Name": "nc-bad", "Driver": "host"}, 403, 'only one instance of "host" network is allowed'),
])
def test_create_refusals_in_dockerds_words(compatd, body, status, message):
    response = compatd.api("POST", "/networks/create", json=body)
    assert (response.status_code, response.json()) == (status, {"message": message})


def test_none_and_host_networks_take_no_container_at_run_time(api):
    net = _net(api, "nc-join")
    cid = _run(api, host_config=api.create_host_config(network_mode="none"))
    import docker

    with pytest.raises(docker.errors.APIError) as info:
        api.connect_container_to_network(cid, net)
    assert (info.value.status_code, info.value.explanation) == (
        403, "container cannot be connected to multiple networks with one of the networks in private (none) mode")
    bridged = _run(api)
    with pytest.raises(docker.errors.APIError) as info:
        api.connect_container_to_network(bridged, "none")
    assert info.value.explanation == \
        "container cannot be connected to multiple networks with one of the networks in private (none) mode"
    with pytest.raises(docker.errors.APIError) as info:
        api.connect_container_to_network(bridged, "host")
    assert (info.value.status_code, info.value.explanation) == (
        403, "container cannot be disconnected from host network or connected to host network")


def test_ipam_options_shown_as_given(compatd):
    """dockerd keeps IPAM.Options as sent: null when absent, {} as the CLI sends it."""
    for name, ipam, shown in (("nc-opt-none", None, None), ("nc-opt-empty", {"Driver": "default", "Options": {}}, {}),
                              ("nc-opt-set", {"Options": {"a": "b"}}, {"a": "b"})):
        body = {"Name": name, **({"IPAM": ipam} if ipam is not None else {})}
        assert compatd.api("POST", "/networks/create", json=body).status_code == 201
        try:
            assert compatd.api("GET", f"/networks/{name}").json()["IPAM"]["Options"] == shown
        finally:
            compatd.api("DELETE", f"/networks/{name}")


def test_names_with_spaces_and_duplicates(api):
    import docker

    _net(api, "nc 01")
    assert api.inspect_network("nc 01")["Name"] == "nc 01"
    with pytest.raises(docker.errors.APIError) as err:
        api.create_network("nc 01", check_duplicate=True)
    assert err.value.status_code == 409


def test_links_on_a_user_network_are_aliases_for_the_linking_container_only(api):
    _net(api, "nc-links")
    hc = api.create_host_config(network_mode="nc-links")
    linking = _run(api, host_config=hc, networking_config=api.create_networking_config(
        {"nc-links": api.create_endpoint_config(links=[("nc-upstream", "bar")])}))
    assert api.inspect_container(linking)["NetworkSettings"]["Networks"]["nc-links"]["Links"] == ["nc-upstream:bar"]
    upstream = _run(api, "nc-upstream", host_config=hc)
    upstream_ip = api.inspect_container(upstream)["NetworkSettings"]["Networks"]["nc-links"]["IPAddress"]
    code, out = _exec(api, linking, ["nslookup", "bar"])
    assert code == 0 and upstream_ip in out, out
    other = _run(api, host_config=hc)
    code, out = _exec(api, other, ["nslookup", "bar"])
    assert code != 0, out


def test_legacy_links_on_the_default_bridge_and_removing_one(api, compatd):
    db = _run(api, "nc-db", environment=["SECRET=s3"], ports=[5432])
    db_ip = api.inspect_container(db)["NetworkSettings"]["IPAddress"]
    web = api.create_container("busybox", "sh -c 'cat /etc/hosts; env'", name="nc-web",
                               host_config=api.create_host_config(links={"nc-db": "dbalias"}))["Id"]
    assert api.inspect_container(web)["HostConfig"]["Links"] == ["/nc-db:/nc-web/dbalias"]  # dockerd's form
    api.start(web)
    assert api.wait(web)["StatusCode"] == 0
    out = api.logs(web).decode()
    assert f"{db_ip}\tdbalias" in out, out
    for line in (f"DBALIAS_PORT_5432_TCP_ADDR={db_ip}", "DBALIAS_PORT_5432_TCP_PORT=5432",
                 f"DBALIAS_PORT=tcp://{db_ip}:5432", "DBALIAS_NAME=/nc-web/dbalias", "DBALIAS_ENV_SECRET=s3"):
        assert line in out, out
    # a link to a container that is not running fails the start with the reason; to one that
    # does not exist, the create (as dockerd)
    api.create_container("busybox", "true", name="nc-stopped")
    lonely = api.create_container("busybox", "true", host_config=api.create_host_config(links={"nc-stopped": "x"}))
    with pytest.raises(Exception, match="non running container"):
        api.start(lonely)
    with pytest.raises(Exception, match="could not get container for nc-nothere: No such container: nc-nothere"):
        api.create_container("busybox", "true", host_config=api.create_host_config(links={"nc-nothere": "x"}))
    # DELETE /containers/{parent}/{alias}?link=1 forgets the link, keeps both containers
    response = compatd.api("DELETE", "/containers//nc-web/dbalias", params={"link": "1"})
    assert response.status_code == 204, response.text
    assert not api.inspect_container(web)["HostConfig"]["Links"]
    assert compatd.api("DELETE", "/containers//nc-web/dbalias", params={"link": "1"}).status_code == 404
    api.start(web)
    assert api.wait(web)["StatusCode"] == 0
    assert api.logs(web).decode().count("DBALIAS_NAME=") == 1  # only the first run had the link


def test_mac_addresses_container_wide_and_per_endpoint(api):
    _net(api, "nc-mac")
    cid = api.create_container("busybox", "sleep 300", mac_address="02:42:ac:11:00:42")["Id"]
    api.connect_container_to_network(cid, "nc-mac", mac_address="02:42:ac:11:00:43")
    before = api.inspect_container(cid)
    assert before["Config"]["MacAddress"] == "02:42:ac:11:00:42"
    assert before["NetworkSettings"]["Networks"]["nc-mac"]["MacAddress"] == "02:42:ac:11:00:43"
    api.start(cid)
    _, out = _exec(api, cid, ["ip", "link"])
    assert "02:42:ac:11:00:42" in out and "02:42:ac:11:00:43" in out
    assert api.inspect_container(cid)["NetworkSettings"]["MacAddress"] == "02:42:ac:11:00:42"


def test_link_local_ips_and_driver_opts_on_the_default_bridge(api):
    import docker

    cid = _run(api, host_config=api.create_host_config(network_mode="bridge"),
               networking_config=api.create_networking_config({"bridge": api.create_endpoint_config(
                   link_local_ips=["169.254.8.8", "fe80::8"], driver_opt={"com.docker-py.setting": "on"})}))
    net = api.inspect_container(cid)["NetworkSettings"]["Networks"]["bridge"]
    assert net["IPAMConfig"]["LinkLocalIPs"] == ["169.254.8.8", "fe80::8"]
    assert net["DriverOpts"] == {"com.docker-py.setting": "on"}
    _, out = _exec(api, cid, ["ip", "addr", "show", "eth0"])
    assert "169.254.8.8/16" in out and "fe80::8/64" in out, out
    with pytest.raises(docker.errors.APIError) as err:
        api.create_container("busybox", "true", networking_config=api.create_networking_config(
            {"bridge": api.create_endpoint_config(link_local_ips=["10.1.1.1"])}))
    assert err.value.status_code == 400


def test_connect_stopped_container_then_start_and_force_disconnect(api):
    import docker

    net_id = _net(api, "nc-conn")
    cid = api.create_container("busybox", "sleep 300")["Id"]
    api.connect_container_to_network(cid, net_id, aliases=["svc"], ipv4_address=None)
    assert api.inspect_network(net_id)["Containers"] == {}  # not running: no endpoint yet
    assert api.inspect_container(cid)["NetworkSettings"]["Networks"]["nc-conn"]["Aliases"] == ["svc"]
    api.start(cid)
    assert list(api.inspect_network(net_id)["Containers"]) == [cid]
    # a live endpoint also answers to the short id, as dockerd shows for API < 1.45
    assert api.inspect_container(cid)["NetworkSettings"]["Networks"]["nc-conn"]["Aliases"] == ["svc", cid[:12]]
    _, out = _exec(api, cid, ["ip", "-o", "link"])
    assert "eth1" in out
    api.disconnect_container_from_network(cid, net_id, force=True)
    assert api.inspect_network(net_id)["Containers"] == {}
    _, out = _exec(api, cid, ["ip", "-o", "link"])
    assert "eth1" not in out
    with pytest.raises(docker.errors.APIError):
        api.disconnect_container_from_network(cid, net_id, force=True)


def test_disconnecting_a_stopped_container_is_an_event_as_dockerd_logs_it(api):
    net_id = _net(api, "nc-quiet")
    cid = api.create_container("busybox", "true")["Id"]
    api.connect_container_to_network(cid, net_id)
    since = api.inspect_container(cid)["Created"]
    api.disconnect_container_from_network(cid, net_id)
    events = api.events(since=since, until=int(__import__("time").time()) + 1, decode=True,
                        filters={"type": "network", "network": net_id})
    # as dockerd (checked side by side): connecting a container that is not running logs
    # nothing, its disconnect does
    assert [(e["Action"], e["Actor"]["Attributes"].get("container")) for e in events] == [("disconnect", cid)]


def test_prune_filters(api, compatd):
    _net(api, "nc-prune-keep", labels={"keep": "1"})
    _net(api, "nc-prune-drop")
    future = str(int(time.time()) + 3600)
    past = str(int(time.time()) - 3600)
    assert api.prune_networks(filters={"until": past})["NetworksDeleted"] is None
    deleted = api.prune_networks(filters={"label!": "keep=1", "until": future})["NetworksDeleted"]
    assert "nc-prune-drop" in deleted and "nc-prune-keep" not in deleted
    response = compatd.api("POST", "/networks/prune", params={"filters": json.dumps({"bogus": ["x"]})})
    assert response.status_code == 400
    assert api.prune_networks(filters={"label": "keep=1"})["NetworksDeleted"] == ["nc-prune-keep"]


def test_inspect_fields_and_scope(api, compatd):
    net = api.inspect_network(_net(api, "nc-inspect", internal=True, attachable=True))
    for key, value in (("Scope", "local"), ("Internal", True), ("Attachable", True), ("Ingress", False),
                       ("ConfigOnly", False), ("ConfigFrom", {"Network": ""}), ("EnableIPv6", False)):
        assert net[key] == value, key
    assert net["Created"].endswith("Z") and net["IPAM"]["Driver"] == "default"
    assert compatd.api("GET", "/networks/nc-inspect", params={"scope": "swarm"}).status_code == 404
    assert compatd.api("GET", "/networks/nc-inspect", params={"scope": "local"}).status_code == 200


def test_config_only_network_and_config_from(api, compatd):
    import docker

    from docker.types import IPAMConfig, IPAMPool

    cfg = api.inspect_network(_net(api, "nc-cfg", ipam=IPAMConfig(pool_configs=[IPAMPool(subnet="10.250.64.0/24")]),
                                   options={"com.docker.network.driver.mtu": "1400"}))
    assert (cfg["ConfigOnly"], cfg["Driver"], cfg["IPAM"]["Config"]) == (False, "bridge", [{"Subnet": "10.250.64.0/24"}])
    api.remove_network("nc-cfg")
    response = compatd.api("POST", "/networks/create", json={
        "Name": "nc-cfg", "ConfigOnly": True, "IPAM": {"Config": [{"Subnet": "10.250.64.0/24"}]},
        "Options": {"com.docker.network.driver.mtu": "1400"}})
    assert response.status_code == 201, response.text
    api.made_networks.append("nc-cfg")
    cfg = api.inspect_network("nc-cfg")
    assert cfg["ConfigOnly"] is True and cfg["Driver"] == "null"
    with pytest.raises(docker.errors.APIError):
        api.create_container("busybox", "true", host_config=api.create_host_config(network_mode="nc-cfg"))
    bad = compatd.api("POST", "/networks/create", json={"Name": "nc-from", "ConfigFrom": {"Network": "nc-cfg"},
                                                        "IPAM": {"Config": [{"Subnet": "10.250.65.0/24"}]}})
    assert bad.status_code == 400
    response = compatd.api("POST", "/networks/create", json={"Name": "nc-from", "ConfigFrom": {"Network": "nc-cfg"}})
    assert response.status_code == 201, response.text
    api.made_networks.insert(0, "nc-from")
    net = api.inspect_network("nc-from")
    assert net["ConfigFrom"] == {"Network": "nc-cfg"} and net["IPAM"]["Config"] == [{"Subnet": "10.250.64.0/24"}]
    cid = _run(api, host_config=api.create_host_config(network_mode="nc-from"))
    _, out = _exec(api, cid, ["ip", "addr", "show", "eth0"])
    assert "10.250.64.2/24" in out and "mtu 1400" in out
    with pytest.raises(docker.errors.APIError):
        api.remove_network("nc-cfg")  # nc-from depends on it


def test_bridge_driver_options_icc_host_binding_and_validation(api, compatd):
    import socket

    _net(api, "nc-noicc", options={"com.docker.network.bridge.enable_icc": "false",
                                   "com.docker.network.bridge.host_binding_ipv4": "127.0.0.1"})
    hc = api.create_host_config(network_mode="nc-noicc", port_bindings={80: None})
    first = _run(api, host_config=hc, command="httpd -f -p 80 -h /", ports=[80])
    second = _run(api, host_config=api.create_host_config(network_mode="nc-noicc"))
    net = api.inspect_container(first)["NetworkSettings"]
    code, out = _exec(api, second, ["ping", "-c1", "-W2", net["Networks"]["nc-noicc"]["IPAddress"]])
    assert code != 0, out  # isolated bridge ports: containers cannot reach each other
    code, out = _exec(api, second, ["ping", "-c1", "-W2", net["Networks"]["nc-noicc"]["Gateway"]])
    assert code == 0, out  # but they reach the gateway
    binding = net["Ports"]["80/tcp"][0]
    assert binding["HostIp"] == "127.0.0.1"  # host_binding_ipv4 stands in for a missing -p address
    with socket.create_connection(("127.0.0.1", int(binding["HostPort"])), timeout=10):
        pass
    for options in ({"com.docker.network.driver.mtu": "9x"}, {"com.docker.network.bridge.enable_icc": "maybe"},
                    {"com.docker.network.bridge.name": "a-name-far-too-long"}):
        response = compatd.api("POST", "/networks/create", json={"Name": "nc-badopt", "Options": options})
        assert response.status_code == 400, (options, response.text)


def test_a_host_bridge_named_by_the_user_is_borrowed_not_deleted(tmp_path):
    """`-o com.docker.network.bridge.name=br0` on a bridge the host already has: the network
    uses it and, as dockerd since 1.13, neither `network rm` nor stopping the daemon deletes
    it (it may carry the host's own uplink)."""
    name = "pnchostbr0"
    subprocess.run(["ip", "link", "add", name, "type", "bridge"], check=True)
    try:
        with private_daemon("pe-netborrow-") as handle:
            response = handle.api("POST", "/networks/create", json={
                "Name": "nc-borrow", "Options": {"com.docker.network.bridge.name": name},
                "IPAM": {"Config": [{"Subnet": "10.251.77.0/24"}]}})
            assert response.status_code == 201, response.text
            created = subprocess.run(["ip", "-o", "addr", "show", "dev", name], capture_output=True, text=True).stdout
            assert "10.251.77.1/24" in created  # it is the network's gateway
            handle.stop()
            handle.extra_args = ["--no-live-restore"]  # its stop releases every network
            handle.start()  # the record keeps that the bridge was the host's
            assert handle.api("DELETE", "/networks/nc-borrow").status_code == 204
            assert subprocess.run(["ip", "link", "show", name], capture_output=True).returncode == 0
            assert handle.api("POST", "/networks/create", json={
                "Name": "nc-borrow2", "Options": {"com.docker.network.bridge.name": name},
                "IPAM": {"Config": [{"Subnet": "10.251.77.0/24"}]}}).status_code == 201
            handle.stop()
        assert subprocess.run(["ip", "link", "show", name], capture_output=True).returncode == 0
    finally:
        subprocess.run(["ip", "link", "del", name], check=False)


def test_bridge_name_of_a_non_bridge_link_and_small_ipv6_mtu_are_refused(compatd):
    name = "pncveth0"  # a host link that is not a bridge (a veth pair: the dummy module may be absent)
    subprocess.run(["ip", "link", "add", name, "type", "veth", "peer", "name", "pncveth1"], check=True)
    try:
        response = compatd.api("POST", "/networks/create", json={
            "Name": "nc-hijack", "Options": {"com.docker.network.bridge.name": name}})
        assert response.status_code == 400, response.text
        assert "not a bridge" in response.json()["message"]
        addresses = subprocess.run(["ip", "-o", "addr", "show", "dev", name], capture_output=True, text=True).stdout
        assert "inet" not in addresses  # the host's link was left alone
    finally:
        subprocess.run(["ip", "link", "del", name], check=False)
    response = compatd.api("POST", "/networks/create", json={
        "Name": "nc-smallmtu", "EnableIPv6": True, "Options": {"com.docker.network.driver.mtu": "1000"},
        "IPAM": {"Config": [{"Subnet": "fd5e:c0de:79::/64"}]}})
    assert response.status_code == 400 and "1280" in response.json()["message"], response.text
    assert compatd.api("GET", "/networks/nc-hijack").status_code == 404
    assert compatd.api("GET", "/networks/nc-smallmtu").status_code == 404


def test_a_network_missing_at_create_is_looked_up_at_start(api, compatd):
    """As dockerd: create takes a network that does not exist yet (the docker CLI reads a
    create's 404 as a missing image, and pulls); start answers 404 "network … not found" and
    leaves the container created; once the network exists, the same container starts on it."""
    cid = api.create_container("busybox", ["sleep", "60"], name="nc-later",
                               host_config=api.create_host_config(network_mode="nc-later-net"))["Id"]
    response = compatd.api("POST", f"/containers/{cid}/start")
    assert response.status_code == 404, response.text
    assert response.json()["message"] == "network nc-later-net not found"
    created = api.inspect_container(cid)
    assert created["State"]["Status"] == "created"
    pending = created["NetworkSettings"]["Networks"]["nc-later-net"]  # listed, as dockerd lists it
    assert (pending["NetworkID"], pending["EndpointID"], pending["IPAddress"]) == ("", "", "")
    api.create_network("nc-later-net", driver="bridge")
    api.made_networks.append("nc-later-net")
    api.start(cid)
    networks = api.inspect_container(cid)["NetworkSettings"]["Networks"]
    assert list(networks) == ["nc-later-net"] and networks["nc-later-net"]["IPAddress"]
    api.remove_container(cid, force=True)


def test_an_address_or_alias_on_none_or_host_is_refused_as_dockerd(api, compatd):
    """--network none/host with --ip or --network-alias: dockerd's 400s (the settings were
    dropped without a word)."""
    for mode in ("none", "host"):
        for settings, message in (
                ({"IPAMConfig": {"IPv4Address": "10.1.2.3"}}, "user specified IP address is supported on user defined networks only"),
                ({"Aliases": ["x"]}, "network-scoped alias is supported only for containers in user defined networks")):
            response = compatd.api("POST", "/containers/create", json={
                "Image": "busybox", "Cmd": ["true"], "HostConfig": {"NetworkMode": mode},
                "NetworkingConfig": {"EndpointsConfig": {mode: settings}}})
            assert (response.status_code, response.json()["message"]) == (400, message), (mode, response.text)
    assert not api.containers(all=True)


def test_a_network_removed_after_create_fails_the_start_by_name(api, compatd):
    """As dockerd: `network rm` leaves a created container's network setting in place; its
    start answers 404 "network <name> not found" (before: it started with no network at
    all); a network made again under that name is the one it then starts on."""
    old_id = _net(api, "nc-gone-net")
    cid = api.create_container("busybox", ["sleep", "60"], name="nc-gone",
                               host_config=api.create_host_config(network_mode="nc-gone-net"))["Id"]
    api.remove_network(old_id)
    response = compatd.api("POST", f"/containers/{cid}/start")
    assert response.status_code == 404, response.text
    assert response.json()["message"] == "network nc-gone-net not found"
    state = api.inspect_container(cid)
    assert state["State"]["Status"] == "created"
    assert state["NetworkSettings"]["Networks"]["nc-gone-net"]["NetworkID"] == ""  # never joined
    new_id = _net(api, "nc-gone-net")
    api.start(cid)
    networks = api.inspect_container(cid)["NetworkSettings"]["Networks"]
    assert list(networks) == ["nc-gone-net"] and networks["nc-gone-net"]["NetworkID"] == new_id
    assert networks["nc-gone-net"]["IPAddress"]


def test_a_network_removed_after_a_run_fails_the_start_by_id_until_disconnected(api, compatd):
    """As dockerd: a container that ran on a network removed since fails its start with 404
    "network <id> not found" (its id, which dockerd learnt at the first start: a new network
    of that name does not stand in); `network disconnect` of the gone network lets it start
    again, with no network."""
    net_id = _net(api, "nc-ran-net")
    cid = api.create_container("busybox", ["sleep", "60"], name="nc-ran",
                               host_config=api.create_host_config(network_mode="nc-ran-net"))["Id"]
    api.start(cid)
    api.stop(cid, timeout=0)
    api.remove_network(net_id)
    api.made_networks.remove(net_id)
    _net(api, "nc-ran-net")  # same name, another network
    response = compatd.api("POST", f"/containers/{cid}/start")
    assert response.status_code == 404, response.text
    assert response.json()["message"] == f"network {net_id} not found"
    state = api.inspect_container(cid)
    assert state["State"]["Status"] == "exited" and state["State"]["Error"] == f"network {net_id} not found"
    assert state["NetworkSettings"]["Networks"]["nc-ran-net"]["NetworkID"] == net_id
    response = compatd.api("POST", f"/networks/{net_id}/disconnect", json={"Container": cid})
    assert response.status_code == 200, response.text
    assert api.inspect_container(cid)["NetworkSettings"]["Networks"] == {}
    api.start(cid)
    assert api.inspect_container(cid)["State"]["Running"]
    response = compatd.api("POST", "/networks/nc-never-was/disconnect", json={"Container": cid})
    assert response.status_code == 404 and response.json()["message"] == "network nc-never-was not found"
    api.stop(cid, timeout=0)  # dockerd's answer for a container that is not running
    response = compatd.api("POST", "/networks/nc-never-was/disconnect", json={"Container": cid})
    assert response.status_code == 500, response.text
    assert response.json()["message"] == f"container {cid} is not connected to the network nc-never-was"

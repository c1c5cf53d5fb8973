"""engine.networks._netlink against the real kernel, as root: veth peers created directly in a
container's namespace, per-thread setns (the worker thread always comes back home, also when
a step fails), pairs that die with their namespace, and the daemon-level guarantees (nothing
left in `ip -o link` after rm; a namespace still shared by another container gets its veth
deleted explicitly). Only namespaces created here; no traffic leaves them."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import threading
import time

import pytest
import trio

from tests.conftest import private_daemon

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces, netlink)")

from engine.networks import _netlink  # noqa: E402  (pyroute2 import; root-only tests)


def _links() -> set[str]:
    out = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if ":" in line}


def _wait_gone(names, timeout: float = 3.0) -> set[str]:
    deadline = time.monotonic() + timeout
    while True:
        left = set(names) & _links()
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.01)


def _in_ns(pid: int, *argv: str) -> str:
    return subprocess.run(["nsenter", "-t", str(pid), "-n", *argv], capture_output=True, text=True,
                          check=True).stdout


@pytest.fixture
def netns_proc():
    """A process alone in a fresh network namespace (lo only)."""
    procs = []

    def make() -> subprocess.Popen:
        p = subprocess.Popen(["unshare", "-n", "sleep", "120"])
        procs.append(p)
        home = _netlink.netns_of(os.getpid())
        deadline = time.monotonic() + 5
        while _netlink.netns_of(p.pid) == home:  # until unshare(2) has run
            assert time.monotonic() < deadline
            time.sleep(0.005)
        return p

    yield make
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait()


@pytest.fixture
def bridge():
    name = "pbt" + secrets.token_hex(4)
    octet = 100 + secrets.randbelow(100)
    _netlink.ensure_bridge(name, f"10.253.{octet}.1/24")
    yield name, f"10.253.{octet}"
    _netlink.delete_link(name)


def _veth_name() -> str:
    return "pvt" + secrets.token_hex(4)


def _open_fds() -> dict[str, str]:
    """fd -> what it refers to (socket:[inode], nsfs:[…], a path) of this process."""
    out = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            out[fd] = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # closed meanwhile (or the listing's own fd)
            pass
    return out


def _run_in_workers(*fns):
    """Run each fn in a trio worker thread, in order (trio reuses the idle thread); returns
    [(thread ident, thread netns before, result or exception, thread netns after)]."""
    out = []

    async def main():
        for fn in fns:
            def call(fn=fn):
                before = _netlink.thread_netns()
                try:
                    result = fn()
                except Exception as exc:  # noqa: BLE001 - the test inspects it
                    result = exc
                return threading.get_ident(), before, result, _netlink.thread_netns()

            out.append(await trio.to_thread.run_sync(call))

    trio.run(main)
    return out


def test_iproute_socket_opens_in_the_calling_threads_netns(netns_proc):
    p = netns_proc()
    home = _netlink.thread_netns()

    def inside():
        from pyroute2 import IPRoute

        with _netlink.in_netns(f"/proc/{p.pid}/ns/net"):
            assert _netlink.thread_netns() == _netlink.netns_of(p.pid)
            with IPRoute() as ipr:
                return sorted(link.get_attr("IFLA_IFNAME") for link in ipr.get_links())

    def host():
        from pyroute2 import IPRoute

        with IPRoute() as ipr:
            return {link.get_attr("IFLA_IFNAME") for link in ipr.get_links()}

    links_before = _links()
    results = _run_in_workers(inside, host, inside, lambda: _netlink.netns_ifnames(p.pid))
    links_after = _links()
    for ident, before, result, after in results:
        assert not isinstance(result, Exception), result
        assert before == home and after == home  # every worker back in the daemon's netns
    assert results[0][2] == ["lo"]  # the container's namespace, not the host's
    # The host's links: every one there before and after is seen (other tests on the host may
    # add and remove links meanwhile, even some seen by neither of those two reads).
    assert len(results[1][2]) > 1 and links_before & links_after <= results[1][2]
    assert results[3][2] == ["lo"]
    assert _netlink.thread_netns() == home


def test_in_netns_restores_the_thread_on_failure(netns_proc):
    p = netns_proc()
    home = _netlink.thread_netns()

    def boom():
        with _netlink.in_netns(f"/proc/{p.pid}/ns/net"):
            assert _netlink.thread_netns() != home
            raise RuntimeError("failed inside")

    def missing_interface():
        _netlink.configure_in_netns(p.pid, "nosuch0", "eth0", "10.9.9.2/24", None, None)

    def bad_target():
        with _netlink.in_netns("/proc/self/ns/nosuch"):
            pass

    results = _run_in_workers(boom, missing_interface, bad_target, _netlink.thread_netns)
    assert isinstance(results[0][2], RuntimeError)
    assert isinstance(results[1][2], OSError)
    assert isinstance(results[2][2], OSError)
    assert results[3][2] == home
    for ident, before, result, after in results:
        assert before == home and after == home
    # the same worker thread served the calls after the failures
    assert len({r[0] for r in results}) < len(results)


def test_peer_is_created_inside_the_namespace_and_configured(netns_proc, bridge):
    p = netns_proc()
    br, prefix = bridge
    host = _veth_name()
    home = _netlink.thread_netns()
    fds = _open_fds()
    [(_, before, ident, after)] = _run_in_workers(lambda: _netlink.setup_veth(
        host_name=host, master=br, pid=p.pid, ifname="eth0", address_cidr=f"{prefix}.2/24",
        gateway=f"{prefix}.1", mac="02:42:0a:fd:00:02"))
    try:
        assert not isinstance(ident, Exception), ident
        assert before == home and after == home
        assert ident == _netlink.netns_of(p.pid)
        # nothing (nsfs fd, sockets) leaked; fds of earlier tests may close meanwhile
        assert {fd: t for fd, t in _open_fds().items() if fds.get(fd) != t} == {}
        shown = subprocess.run(["ip", "-o", "link", "show", host], capture_output=True, text=True).stdout
        assert f"master {br}" in shown and "link-netnsid" in shown and ",UP" in shown
        links = _in_ns(p.pid, "ip", "-o", "link")
        assert "eth0@" in links and "02:42:0a:fd:00:02" in links and "state UP" in links
        assert f"inet {prefix}.2/24" in _in_ns(p.pid, "ip", "-o", "-4", "addr", "show", "eth0")
        assert f"default via {prefix}.1 dev eth0" in _in_ns(p.pid, "ip", "route")
        assert "LOOPBACK,UP" in _in_ns(p.pid, "ip", "-o", "link", "show", "lo")
    finally:
        _netlink.delete_link(host)


def test_failed_setup_removes_the_pair_and_restores_the_thread(netns_proc, bridge):
    p = netns_proc()
    br, prefix = bridge
    home = _netlink.thread_netns()
    host = _veth_name()
    # the gateway is not on the interface's subnet: the route fails after the pair exists
    bad = lambda: _netlink.setup_veth(host_name=host, master=br, pid=p.pid, ifname="eth0",  # noqa: E731
                                      address_cidr=f"{prefix}.2/24", gateway="10.254.254.1",
                                      mac="02:42:0a:fd:00:02")
    no_bridge = lambda: _netlink.setup_veth(host_name=host, master="pbtnosuch", pid=p.pid,  # noqa: E731
                                            ifname="eth0", address_cidr=f"{prefix}.2/24",
                                            gateway=None, mac="02:42:0a:fd:00:02")
    results = _run_in_workers(bad, no_bridge, _netlink.thread_netns)
    assert isinstance(results[0][2], Exception) and isinstance(results[1][2], OSError)
    for _, before, _, after in results:
        assert before == home and after == home
    assert host not in _links()
    assert len(_in_ns(p.pid, "ip", "-o", "link").splitlines()) == 1  # lo only: eth0 went with the pair


def test_pair_dies_with_its_namespace_without_an_explicit_delete(netns_proc, bridge):
    p = netns_proc()
    br, prefix = bridge
    host = _veth_name()
    ident = _netlink.setup_veth(host_name=host, master=br, pid=p.pid, ifname="eth0",
                                address_cidr=f"{prefix}.3/24", gateway=None, mac="02:42:0a:fd:00:03")
    assert host in _links()
    p.kill()
    p.wait()
    outcome = _netlink.release_veth(host, ident)
    assert outcome in ("gone", "dying", "lingering")  # never an explicit delete
    assert _wait_gone([host]) == set()


def test_release_deletes_when_another_process_shares_the_namespace(netns_proc, bridge):
    p = netns_proc()
    br, prefix = bridge
    host = _veth_name()
    ident = _netlink.setup_veth(host_name=host, master=br, pid=p.pid, ifname="eth0",
                                address_cidr=f"{prefix}.4/24", gateway=None, mac="02:42:0a:fd:00:04")
    other = subprocess.Popen(["nsenter", "-t", str(p.pid), "-n", "sleep", "120"])
    try:
        deadline = time.monotonic() + 5
        while _netlink.netns_of(other.pid) != ident:
            assert time.monotonic() < deadline
            time.sleep(0.005)
        p.kill()
        p.wait()
        assert _netlink.release_veth(host, ident) == "deleted"
        assert host not in _links()
        assert _netlink.release_veth(host, ident) == "gone"
    finally:
        other.kill()
        other.wait()


# --- through the daemon -------------------------------------------------------------------

@pytest.fixture(scope="module")
def daemon():
    with private_daemon("pe-netlinktest-") as handle:
        yield handle

def cli(handle, *args, check=True):
    result = subprocess.run([sys.executable, "-m", "engine.cli", *args], env=handle.env(),
                            capture_output=True, text=True, timeout=60)
    if check:
        assert result.returncode == 0, (args, result.stdout, result.stderr, handle.log()[-3000:])
    return result


def _ours(handle) -> set[str]:
    from engine.networks import daemon_tag

    tag = daemon_tag(handle.data_root)
    return {link for link in _links() if link.startswith(("pv" + tag, "pc" + tag))}


def _wait_ours(handle, expected: set[str], timeout: float = 3.0) -> set[str]:
    deadline = time.monotonic() + timeout
    while _ours(handle) != expected and time.monotonic() < deadline:
        time.sleep(0.01)
    return _ours(handle)


def test_rm_leaves_no_veth_and_the_address_is_reused(daemon):
    before = _ours(daemon)
    ips = []
    for i in range(5):
        cli(daemon, "run", "-d", "--name", f"nl{i}", "busybox", "sleep", "60")
        ips.append(daemon.api("GET", f"/containers/nl{i}/json").json()["NetworkSettings"]["IPAddress"])
        assert len(_ours(daemon) - before) == 1
        cli(daemon, "rm", "-f", f"nl{i}")
        assert _wait_ours(daemon, before) == before
    assert len(set(ips)) == 1  # released synchronously: the next container gets it again
    for _ in range(5):  # short-lived containers, the benchmark's pattern
        cli(daemon, "run", "--rm", "busybox", "true")
    assert _wait_ours(daemon, before) == before


def test_shared_namespace_and_disconnect_delete_the_veth_explicitly(daemon):
    before = _ours(daemon)
    cli(daemon, "network", "create", "nlnet")
    try:
        cli(daemon, "run", "-d", "--name", "nla", "busybox", "sleep", "60")
        a_veth = _ours(daemon) - before
        assert len(a_veth) == 1
        cli(daemon, "run", "-d", "--name", "nlb", "--network", "container:nla", "busybox", "sleep", "60")
        # nla's namespace lives on in nlb: nla's veth must not outlive nla
        cli(daemon, "stop", "-t", "0", "nla")
        assert not (_ours(daemon) & a_veth)
        # disconnect of a running container: deleted before the call returns
        cli(daemon, "run", "-d", "--name", "nlc", "busybox", "sleep", "60")
        cli(daemon, "network", "connect", "nlnet", "nlc")
        with_both = _ours(daemon)
        cli(daemon, "network", "disconnect", "nlnet", "nlc")
        assert len(with_both - _ours(daemon)) == 1
        assert "eth1" not in cli(daemon, "exec", "nlc", "ip", "-o", "link").stdout
    finally:
        cli(daemon, "rm", "-f", "nla", "nlb", "nlc", check=False)
        cli(daemon, "network", "rm", "nlnet", check=False)
    assert _wait_ours(daemon, before) == before



def test_routed_networks_reads_routes_and_addresses_of_the_namespace(netns_proc):
    """The raw netlink dumps behind subnet picking: routes of every table with a destination
    (not the default), and non-loopback addresses, each with its device."""
    import ipaddress

    pid = netns_proc().pid
    _in_ns(pid, "ip", "link", "add", "d0", "type", "bridge")
    _in_ns(pid, "ip", "link", "set", "d0", "up")
    _in_ns(pid, "ip", "addr", "add", "10.77.1.5/24", "dev", "d0")
    _in_ns(pid, "ip", "route", "add", "10.78.0.0/16", "dev", "d0")
    _in_ns(pid, "ip", "route", "add", "10.79.0.0/16", "dev", "d0", "table", "7")
    _in_ns(pid, "ip", "route", "add", "default", "dev", "d0")
    with _netlink.in_netns(f"/proc/{pid}/ns/net"):
        got = set(_netlink.routed_networks())
    net = ipaddress.ip_network
    assert {(net("10.77.1.0/24"), "d0"), (net("10.78.0.0/16"), "d0"),
            (net("10.79.0.0/16"), "d0"), (net("10.77.1.5/32"), "d0")} <= got
    assert all(n.prefixlen > 0 and dev in ("d0", "lo") for n, dev in got)  # no default

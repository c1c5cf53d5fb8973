"""NetworkManager: network records, drivers, endpoints of running containers, the daemon's
nft table, embedded DNS servers and port proxies. The work it orchestrates is in modules by
job: attachments (which networks a container is on), join (one endpoint made and undone),
leases (addresses), hostfiles (resolv.conf, hosts), recovery (startup cleanup),
defaults (built-in networks), reaper (links deleted in the background), addressing
(subnets), links, dns, ports, nftables.

Task tree:

    NetworkManager.run ── nursery
        ├── DnsServer.serve(network)       one per user-defined bridge network (dns.EmbeddedDns)
        ├── ports.proxy(bound port)        one per published port of a running container
        ├── PendingDeletes._delete(bridge) a removed network's bridge (delete_link_soon)
        └── VethReaper.run()               deletes veths a stopped container's netns left

Host state (bridges, veths, the nft table) is removed by `shutdown()`, which the daemon calls
after every container has stopped; a daemon that was killed leaves it behind, and `run`
removes this daemon's stale veths and allocations at the next start (names carry the
daemon's tag, so private daemons side by side never touch each other's); the state of a daemon
killed whose data root was then deleted is removed by the next daemon to start (owners.py).

Stopping a container releases its addresses, DNS names, DNAT rules and port proxies before
`teardown` returns, but does not wait for its veth pair to be deleted: the kernel destroys
the pair with the container's network namespace (the bridge driver deletes it explicitly only
while a process still lives there); one still present a moment later is deleted by the
VethReaper (reaper.py); `shutdown` waits for (or deletes) all of them."""

from __future__ import annotations

import hashlib
import logging
import os
import secrets

import attrs
import trio

from engine import errors
from engine.networks import endpoints as saved_endpoints
from engine.networks import addressing, attachments, defaults, hostfiles, links, ports, recovery
from engine.networks.addressing import DEFAULT_DATA_ROOT
from engine.networks.attachments import Attachment, AttachmentStore
from engine.networks.dns import EmbeddedDns
from engine.networks.driver import load_drivers
from engine.networks.join import join, leave
from engine.networks.leases import Leases
from engine.networks.model import Endpoint, EndpointSettings, Network, NetworkSpec, created_now
from engine.networks.nftables import Dnat, NatNetwork, NftTable
from engine.networks.owners import OwnerRecords
from engine.networks.reaper import PendingDeletes, VethReaper

log = logging.getLogger(__name__)

BUILTIN = ("bridge", "host", "none")
SHARED_MODES = ("host", "none")


def daemon_tag(data_root: str) -> str:
    return hashlib.sha256(os.path.abspath(data_root).encode()).hexdigest()[:5]


class NetworkManager:
    def __init__(self, config, events) -> None:
        self.config = config
        self.live: set[str] = set()  # containers a previous daemon left running (kept, adopted)
        self.events = events
        self.directory = os.path.join(config.data_root, "networks")
        self._endpoints_dir = os.path.join(self.directory, "endpoints")
        self.tag = daemon_tag(config.data_root)
        self.table = NftTable(f"pyengine_{self.tag}")
        self._owners = OwnerRecords(config.exec_root)
        self._networks: dict[str, Network] = {}
        self._leases = Leases(os.path.join(self.directory, "ipam"))
        self._drivers: dict[str, object] = {}
        self._endpoints: dict[str, dict[str, Endpoint]] = {}  # container id → network id → ep
        self._attachments = AttachmentStore(os.path.join(self.directory, "containers"))
        self._dns = EmbeddedDns(self.endpoints_on, upstreams=config.dns or None)
        self._nursery: trio.Nursery | None = None
        self._lock = trio.Lock()
        self._reaper = VethReaper()
        self._deletes = PendingDeletes()

    # --- naming ---------------------------------------------------------------------------
    @property
    def default_bridge_name(self) -> str:
        if getattr(self.config, "bridge_name", None):
            return self.config.bridge_name
        if os.path.abspath(self.config.data_root) == DEFAULT_DATA_ROOT:
            return "pe0"
        return f"pe{self.tag}"

    def bridge_name_for(self, network: Network) -> str:
        return f"pb{self.tag}{network.id[:6]}"

    def veth_names(self) -> tuple[str, str]:
        suffix = secrets.token_hex(4)[:7]
        return f"pv{self.tag}{suffix}", f"pc{self.tag}{suffix}"

    # --- service --------------------------------------------------------------------------
    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        self._drivers = load_drivers(self)
        await trio.to_thread.run_sync(self._recover)
        await self._remove_orphans()
        await self._ensure_builtin()
        for network in list(self._networks.values()):
            driver = self._drivers.get(network.driver)
            if driver is None:
                continue
            try:
                await driver.restore_network(network)
            except Exception as exc:
                log.warning("restoring network %s failed: %s", network.name, exc)
        await self._apply_nft()
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            for network in list(self._networks.values()):
                await self._dns.start(network, nursery)
            nursery.start_soon(self._reaper.run)
            task_status.started()
            await trio.sleep_forever()

    async def _remove_orphans(self) -> None:
        """Claim our tag, and remove the host state of daemons gone with their data roots
        (owners.py): no daemon would ever remove it otherwise."""
        await trio.to_thread.run_sync(self._owners.register, self.tag, self.config.data_root,
                                      self.default_bridge_name)
        for orphan in await trio.to_thread.run_sync(self._owners.orphans, self.tag, self.default_bridge_name):
            log.info("removing the network state of a daemon whose data root is gone (tag %s)", orphan.tag)
            await trio.to_thread.run_sync(recovery.remove_links_of_gone, orphan.tag, orphan.bridge)
            await NftTable(f"pyengine_{orphan.tag}").delete()
            await trio.to_thread.run_sync(self._owners.unregister, orphan.tag)

    def _recover(self) -> None:
        """Load records; veths and addresses of containers not in `live` are stale."""
        for d in (self.directory, self._leases.root):
            os.makedirs(d, exist_ok=True)
        for network in recovery.load_networks(self.directory):
            self._networks[network.id] = network
            if network.subnet:
                self._leases.recover(network, self.live)
        self._attachments.load()
        self._endpoints.update(saved_endpoints.load_live(self._endpoints_dir, self.live, self._networks))
        kept = {ep.host_veth for eps in self._endpoints.values() for ep in eps.values()}
        recovery.remove_stale_links(self.tag, kept, {n.bridge for n in self._networks.values()})
        recovery.enable_ip_forward()

    async def adopt(self, container, pid: int) -> None:
        """A container that kept running without a daemon (loaded by _recover) gets its
        endpoints' container back and its published ports' proxies."""
        for ep in self._endpoints.get(container.id, {}).values():
            ep.container = container
            for bound in ep.ports:
                try:
                    saved_endpoints.rebind(bound)
                    await self._nursery.start(ports.proxy, bound, ep.ip)
                except errors.EngineError as exc:
                    log.warning("port %s of %s: %s", bound.host_port, container.name, exc)

    async def _ensure_builtin(self) -> None:
        bridge = await defaults.ensure_builtin(
            self._networks, self.directory, bip=getattr(self.config, "bip", None),
            bridge_name=self.default_bridge_name, tag=self.tag, data_root=self.config.data_root,
            default_pools=self.config.default_address_pools, mtu=self.config.mtu, icc=self.config.icc,
            host_ip=self.config.ip)
        if bridge.id not in self._leases:
            await trio.to_thread.run_sync(self._leases.open, bridge)

    def reap_later(self, host_veth: str) -> None:
        """For drivers: `host_veth` belongs to a stopped container (see reaper.py)."""
        self._reaper.reap_later(host_veth)

    def delete_link_soon(self, name: str) -> None:
        """For drivers: delete the host link `name` (a removed network's bridge) in a task of
        the manager's nursery rather than in the request (see reaper.py). Creates wait for it
        (links_deleted). Only for names carrying this daemon's tag: a daemon killed meanwhile
        deletes such a link at its next start (recovery.py)."""
        self._deletes.start(self._nursery, name)

    async def links_deleted(self) -> None:
        """Wait until the links handed to delete_link_soon are gone (a new bridge may take
        the subnet, or the name, of one being deleted)."""
        await self._deletes.wait()

    async def shutdown(self) -> None:
        """Remove this daemon's host state: endpoints, bridges, the nft table."""
        await self.links_deleted()
        for cid in list(self._endpoints):
            await self._teardown_endpoints(cid, publish=False, apply=False)
        try:
            await self._reaper.settle()
        except Exception as exc:
            log.warning("deleting veths of stopped containers failed: %s", exc)
        for network in self._networks.values():
            driver = self._drivers.get(network.driver)
            if driver is not None:
                try:
                    await driver.release_network(network)
                except Exception as exc:
                    log.warning("releasing network %s failed: %s", network.name, exc)
        await self.table.delete()
        await trio.to_thread.run_sync(self._owners.unregister, self.tag)

    # --- lookup ---------------------------------------------------------------------------
    def get(self, ref: str) -> Network:
        network = self._find(ref)
        if network is None:
            raise errors.NotFound(f"network {ref} not found")
        return network

    def _find(self, ref: str) -> Network | None:
        """The network `ref` (id, name or unique id prefix) names; None when none does, a
        NotFound when a prefix names several."""
        if ref in self._networks:
            return self._networks[ref]
        for network in self._networks.values():
            if network.name == ref:
                return network
        matches = [n for n in self._networks.values() if n.id.startswith(ref)] if ref else []
        if len(matches) > 1:
            raise errors.NotFound(f"network {ref} is ambiguous ({len(matches)} matches found based on ID prefix)")
        return matches[0] if matches else None

    def all(self) -> list[Network]:
        return list(self._networks.values())

    def driver(self, name: str):
        driver = self._drivers.get(name)
        if driver is None:
            driver = self._discover_remote(name)
        if driver is None:
            raise errors.NotFound(f"plugin \"{name}\" not found")
        return driver

    def _discover_remote(self, name: str):
        from engine.networks.remote import RemoteDriver
        from engine.plugins import find_plugin

        address = find_plugin(name, getattr(self.config, "plugin_dirs", None))
        if address is None:
            return None
        driver = RemoteDriver(self, name, address)
        self._drivers[name] = driver
        return driver

    def statistics(self) -> dict:
        return {"networks": len(self._networks), "endpoints": sum(len(e) for e in self._endpoints.values()),
                "dns_servers": len(self._dns)}

    # --- networks -------------------------------------------------------------------------
    async def create(self, spec: NetworkSpec) -> Network:
        """A new network. Names are unique whatever CheckDuplicate says (dockerd ≥ 25)."""
        name = spec.name
        if not name or name.strip() != name or "/" in name:
            raise errors.InvalidParameter(f"invalid network name: {name!r}")
        if name in (*BUILTIN, "default"):  # "default": what NetworkMode calls the bridge
            raise errors.Forbidden(f"operation is not permitted on predefined {name} network")
        async with self._lock:
            if any(n.name == name for n in self._networks.values()):
                raise errors.Conflict(f"network with name {name} already exists")
            if spec.ipam_driver not in ("", "default"):
                raise errors.InvalidParameter(f"IPAM driver {spec.ipam_driver!r} is not supported")
            if spec.ingress:
                raise errors.Forbidden("ingress networks need a swarm: this node is not a swarm manager")
            spec = self._with_config_from(spec)
            if spec.config_only:
                return await self._create_config_only(spec)
            driver = self.driver(spec.driver)
            network = Network(
                id=secrets.token_hex(32), name=name, driver=spec.driver, created=created_now(),
                internal=spec.internal, attachable=spec.attachable, labels=dict(spec.labels),
                options=dict(spec.options), ipam_options=_copy(spec.ipam_options),
                enable_ipv6=spec.enable_ipv6, pools=list(spec.pools), config_from=spec.config_from,
            )
            if getattr(driver, "attaches", False):
                await addressing.assign(network, self.all(), tag=self.tag, data_root=self.config.data_root,
                                        default_bridge=self.default_bridge_name,
                                        default_pools=self.config.default_address_pools)
            elif spec.enable_ipv6 or spec.pools:
                addressing.split_pools(spec.pools)  # validated, recorded for the driver
            await driver.create_network(network)
            try:
                await trio.to_thread.run_sync(network.save, self.directory)
                if network.subnet:
                    await trio.to_thread.run_sync(self._leases.open, network)
                self._networks[network.id] = network
                await self._apply_nft()
                await self._dns.start(network, self._nursery)
            except BaseException:
                with trio.CancelScope(shield=True):
                    self._networks.pop(network.id, None)
                    await driver.delete_network(network)
                    await trio.to_thread.run_sync(self._remove_files, network)
                raise
        self._publish(network, "create")
        return network

    def _with_config_from(self, spec: NetworkSpec) -> NetworkSpec:
        """`config_from`: pools, options and IPv6 come from that config-only network."""
        if not spec.config_from:
            return spec
        source = self.get(spec.config_from)
        if not source.config_only:
            raise errors.InvalidParameter(f"network {source.name} is not a config-only network")
        if spec.config_only:
            raise errors.InvalidParameter("a config-only network cannot be created from another config-only network")
        if spec.pools or spec.options or spec.ipam_options or spec.enable_ipv6:
            raise errors.InvalidParameter("user specified configurations are not supported if the network "
                                          "depends on a configuration network")
        return attrs.evolve(spec, pools=list(source.pools), options=dict(source.options),
                            ipam_options=_copy(source.ipam_options), enable_ipv6=source.enable_ipv6,
                            config_from=source.name)

    async def _create_config_only(self, spec: NetworkSpec) -> Network:
        """A record only: no subnet picked, no driver state, nothing can attach."""
        addressing.split_pools(spec.pools)
        network = Network(id=secrets.token_hex(32), name=spec.name, driver="null", created=created_now(),
                          labels=dict(spec.labels), options=dict(spec.options), ipam_options=_copy(spec.ipam_options),
                          enable_ipv6=spec.enable_ipv6, pools=list(spec.pools), config_only=True)
        await trio.to_thread.run_sync(network.save, self.directory)
        self._networks[network.id] = network
        self._publish(network, "create")
        return network

    async def remove(self, ref: str) -> None:
        network = self.get(ref)
        if network.builtin:
            raise errors.Forbidden(f"{network.name} is a pre-defined network and cannot be removed")
        users = [n.name for n in self._networks.values() if n.config_from == network.name]
        if network.config_only and users:
            raise errors.Forbidden(f"configuration network {network.name!r} is in use by {', '.join(users)}")
        async with self._lock:
            active = [cid for cid, eps in self._endpoints.items() if network.id in eps]
            if active:
                raise errors.Forbidden(f"error while removing network: network {network.name} id {network.id} has active endpoints")
            self._dns.stop(network)
            driver = self._drivers.get(network.driver)
            if driver is not None:
                await driver.delete_network(network)
            self._networks.pop(network.id, None)
            self._leases.forget(network.id)
            await trio.to_thread.run_sync(self._remove_files, network)
            # Containers that are not running keep their attachment, as in dockerd: their next
            # start fails on it (resolve) until the network is back or they are disconnected.
            await self._apply_nft()
        self._publish(network, "destroy")

    def _remove_files(self, network: Network) -> None:
        try:
            os.unlink(os.path.join(self.directory, network.id + ".json"))
        except FileNotFoundError:
            pass
        self._leases.remove_files(network.id)

    def in_use(self, network: Network) -> bool:
        """Has it active endpoints (a running container on it)? As in dockerd, a stopped
        container's attachment does not count: prune and the dangling filter pass over it
        (its next start fails on the missing network, as `network rm` leaves it)."""
        return any(network.id in eps for eps in self._endpoints.values())

    async def prune(self, keep=lambda n: False) -> list[str]:
        removed = []
        for network in list(self._networks.values()):
            if network.builtin or self.in_use(network) or keep(network):
                continue
            try:
                await self.remove(network.id)
                removed.append(network.name)
            except errors.EngineError:
                pass
        return removed

    # --- nft ------------------------------------------------------------------------------
    async def _apply_nft(self) -> None:
        nat = [NatNetwork(bridge=n.bridge, subnet=n.subnet, internal=n.internal,
                          masquerade=n.options.get("com.docker.network.bridge.enable_ip_masquerade", "true") != "false")
               for n in self._networks.values() if n.driver == "bridge" and n.subnet and n.bridge]
        dnats = []
        for eps in self._endpoints.values():
            for ep in eps.values():
                for bound in ep.ports:
                    dnats.append(Dnat(bound.binding.proto, bound.binding.host_ip, bound.host_port, ep.ip,
                                      bound.binding.container_port))
        await self.table.apply(nat, dnats)

    # --- containers -----------------------------------------------------------------------
    def validate_create(self, host_config, endpoints: dict[str, EndpointSettings]) -> tuple[str, list[Attachment]]:
        """(network mode to record, its attachments) for a new container (raises NotFound
        for an unknown network). `host_config`: its engine.containers.HostConfig; `endpoints`:
        network ref → settings (the primary network's may carry the container's MacAddress);
        HostConfig.Links become the primary network's links on a user-defined network, legacy
        links (hosts entries, env) on the default bridge."""
        mode = host_config.network_mode or "default"
        ports.validate(host_config)
        if mode.startswith("container:") or (mode in SHARED_MODES and not endpoints):
            return mode, []  # (create's hot path: --network none, nothing to check)
        primary = self._find("bridge" if mode == "default" else mode)
        if primary is not None and primary.config_only:
            attachments.validate(primary, EndpointSettings())
        if mode in SHARED_MODES or (primary is not None and primary.driver in ("host", "null")):
            if primary is not None:  # dockerd's refusals of an address or alias there (--network none --ip …)
                attachments.validate(primary, endpoints.get(mode) or endpoints.get(primary.name) or EndpointSettings())
            return (mode if mode in SHARED_MODES else primary.name), []
        legacy = links.parse_all(host_config.links or ())
        out = []
        for ref in [mode if mode != "default" else "bridge", *endpoints]:
            settings = endpoints.get(ref) or endpoints.get("default" if ref == "bridge" else ref) or EndpointSettings()
            network = self._find("bridge" if ref == "default" else ref)
            if network is None:  # as dockerd: the start looks it up again, and fails if it is still missing
                if not any(a.ref == ref for a in out):
                    out.append(Attachment("", settings, ref=ref))
                continue
            if any(a.network_id == network.id for a in out):
                continue
            if network is primary and legacy and network.user_defined:
                settings = attrs.evolve(settings, links=list(dict.fromkeys(
                    [*settings.links, *(f"{n}:{a}" for n, a in legacy)])))
            attachments.validate(network, settings)
            out.append(Attachment(network.id, settings, ref=network.name))
        return mode, out

    async def resolve(self, container) -> None:
        """Before a start, as dockerd: a network the container was created with before it
        existed, or that was removed since, is looked up again by the name it was given
        (404 "network … not found" while there is none; then the container stays as it
        is). Once a container has run, dockerd looks its networks up by id: one removed
        since is a 404 naming its id, even if another has its name now."""
        atts = self.attachments(container.id)
        if all(a.network_id in self._networks for a in atts):
            return
        ran = container.state.started_at_ns != 0
        resolved = []
        for att in atts:
            if att.network_id not in self._networks:
                if att.network_id and (ran or not att.ref):
                    raise errors.NotFound(f"network {att.network_id} not found")
                network = self.get(att.ref)
                attachments.validate(network, att.settings)
                att = Attachment(network.id, att.settings, ref=network.name)
            if not any(a.network_id == att.network_id for a in resolved):
                resolved.append(att)
        await trio.to_thread.run_sync(self._attachments.save, container.id, resolved)

    def record(self, container_id: str, atts: list[Attachment]) -> None:
        """Blocking (a worker thread): a new container's attachments (validate_create's)."""
        self._attachments.save(container_id, atts)

    async def forget(self, container) -> None:
        await self.teardown(container)
        if self._attachments.get(container.id):  # --network none/host record nothing
            await trio.to_thread.run_sync(self._attachments.save, container.id, [])

    def attachments(self, container_id: str) -> list[Attachment]:
        return self._attachments.get(container_id)

    def endpoints_of(self, container_id: str) -> dict[str, Endpoint]:
        """network id → endpoint of a running container."""
        return dict(self._endpoints.get(container_id, {}))

    def endpoints_on(self, network_id: str) -> dict[str, Endpoint]:
        """container id → endpoint of the running containers on a network."""
        return {cid: eps[network_id] for cid, eps in self._endpoints.items() if network_id in eps}

    async def setup(self, container, pid: int) -> None:
        """Network the new container (its netns is `pid`'s, before exec): ports bound first
        (a conflict fails the start), then one interface per attached network, DNAT rules,
        proxies, resolv.conf and hosts. All undone if any step fails."""
        atts = [a for a in self.attachments(container.id) if a.network_id in self._networks]
        host = container.host_config
        bindings = ports.bindings_for(container.config, host) if atts else []
        default_ip = self._networks[atts[0].network_id].options.get(
            "com.docker.network.bridge.host_binding_ipv4") if atts else None
        if default_ip:  # the primary network's default address for -p without one
            bindings = [b if b.host_ip else attrs.evolve(b, host_ip=default_ip) for b in bindings]
        bound: list[ports.BoundPort] = []
        try:
            legacy = self._legacy_links(container) if atts else []
            for binding in bindings:
                bound.append(ports.bind(binding))
            for index, att in enumerate(atts):
                network = self._networks[att.network_id]
                ep = await self._join(container, network, att, pid, route=index == 0, publish=False)
                if index == 0:
                    ep.ports, bound = bound, []
            if any(ep.ports for ep in self._endpoints.get(container.id, {}).values()):
                await self._apply_nft()  # DNAT rules only change with published ports
                for ep in self._endpoints.get(container.id, {}).values():
                    for b in ep.ports:
                        await self._nursery.start(ports.proxy, b, ep.ip)
            if atts:  # --network none/host: no endpoint, no file of ours to write
                await trio.to_thread.run_sync(self._write_files, container, legacy)
        except BaseException:
            for b in bound:
                b.sock.close()
            with trio.CancelScope(shield=True):
                await self._teardown_endpoints(container.id, publish=False, stopped=False)
            raise
        for nid in self._endpoints.get(container.id, {}):
            self._publish(self._networks[nid], "connect", container.id)

    def _legacy_links(self, container) -> list[links.LegacyLink]:
        """HostConfig.Links of a container on the default bridge: each target must run there."""
        bridge = next((n for n in self._networks.values() if n.name == "bridge"), None)
        wanted = links.parse_all(container.host_config.links or ())
        if bridge is None or not wanted or not any(a.network_id == bridge.id for a in self.attachments(container.id)):
            return []
        return links.resolve_legacy(container, wanted, self.endpoints_on(bridge.id).values())

    async def remove_link(self, container, alias: str) -> None:
        """Forget `container`'s link named `alias` (HostConfig.Links and its networks' Links);
        running containers keep what they were started with, as in dockerd."""
        host = container.host_config
        kept = tuple(v for v in host.links or () if links.parse(v)[1] != alias)
        atts = self.attachments(container.id)
        new_atts = [attrs.evolve(a, settings=attrs.evolve(a.settings, links=[
            v for v in a.settings.links if links.parse(v)[1] != alias])) for a in atts]
        if kept == tuple(host.links or ()) and new_atts == atts:
            raise errors.NotFound(f"Could not find link {alias!r} of container {container.name.lstrip('/')}")
        container.host_config = attrs.evolve(host, links=kept or None)
        await trio.to_thread.run_sync(container.save)
        await trio.to_thread.run_sync(self._attachments.save, container.id, new_atts)

    def link_env(self, container) -> list[str]:
        """Docker's legacy link variables (ALIAS_PORT_80_TCP=…, ALIAS_NAME, ALIAS_ENV_…)."""
        try:
            return links.environment(container, self._legacy_links(container))
        except errors.EngineError:
            return []  # the start fails later, in setup, with the reason

    async def _join(self, container, network: Network, att: Attachment, pid: int, *, route: bool,
                    publish: bool) -> Endpoint:
        driver = self.driver(network.driver)
        if not getattr(driver, "attaches", False):
            raise errors.Forbidden(f"network {network.name} does not take endpoints")
        eps = self._endpoints.setdefault(container.id, {})
        used = {ep.ifname for ep in eps.values()}
        ifname = next(f"eth{i}" for i in range(64) if f"eth{i}" not in used)
        ep = await join(driver, network, container, att, pid, self._leases, ifname=ifname, route=route)
        eps[network.id] = ep
        if publish:
            self._publish(network, "connect", container.id)
        return ep

    async def teardown(self, container) -> None:
        """Undo `setup` (the container stopped: its first process has been reaped). Idempotent.
        Ports, addresses and DNS names are released before it returns; veths go with the
        container's namespace (see the module docstring)."""
        await self._teardown_endpoints(container.id, publish=True)

    async def _teardown_endpoints(self, container_id: str, *, publish: bool, apply: bool = True,
                                  stopped: bool = True) -> None:
        eps = self._endpoints.pop(container_id, None)
        if not eps:
            return
        await trio.to_thread.run_sync(saved_endpoints.save, self._endpoints_dir, container_id, None)
        had_ports = any(ep.ports for ep in eps.values())
        for nid, ep in eps.items():
            await self._leave(nid, ep, stopped=stopped)
            if publish and nid in self._networks:
                self._publish(self._networks[nid], "disconnect", container_id)
        if apply and had_ports:
            try:
                await self._apply_nft()
            except errors.EngineError as exc:
                log.warning("updating nftables failed: %s", exc)

    async def _leave(self, nid: str, ep: Endpoint, *, stopped: bool) -> None:
        network = self._networks.get(nid)
        driver = self._drivers.get(network.driver) if network else None
        await leave(driver, network, ep, self._leases, stopped=stopped)

    def _write_files(self, container, legacy=()) -> None:
        """The endpoints recorded (for a daemon that adopts the container), then resolv.conf
        and hosts (hostfiles.py). Blocking."""
        eps = self._endpoints.get(container.id, {})
        saved_endpoints.save(self._endpoints_dir, container.id, eps)
        hostfiles.write(container, eps, self._networks, legacy, daemon=self.config)

    async def connect(self, ref: str, container, pid: int | None, settings: EndpointSettings | None) -> None:
        """Attach `container` (running: `pid`; stopped or created: at its next start)."""
        network = self.get(ref)
        if network.config_only:
            attachments.validate(network, EndpointSettings())
        mode = container.host_config.network_mode or "default"
        if mode == "none" or network.driver == "null":
            raise errors.Forbidden("container cannot be connected to multiple networks with one of the networks in "
                                   "private (none) mode")
        if network.driver == "host":
            raise errors.Forbidden("container cannot be disconnected from host network or connected to host network")
        if mode in SHARED_MODES or mode.startswith("container:"):
            raise errors.Forbidden("container sharing network namespace with another container or host cannot be connected to any other network")
        atts = self.attachments(container.id)
        if any(a.network_id == network.id for a in atts):
            raise errors.Forbidden(f"endpoint with name {container.name} already exists in network {network.name}")
        settings = settings or EndpointSettings()
        attachments.validate(network, settings)
        att = Attachment(network.id, settings, ref=network.name)
        if pid is not None:
            await self._join(container, network, att, pid, route=not self._endpoints.get(container.id), publish=True)
            await trio.to_thread.run_sync(self._write_files, container, self._legacy_links(container))
        await trio.to_thread.run_sync(self._attachments.save, container.id, atts + [att])

    async def disconnect(self, ref: str, container, force: bool = False) -> None:
        """Detach `container`; `force` also when its network is on the way out (dockerd refuses
        a container that is not connected either way). A network removed since the container
        last ran, or not created yet, is forgotten by the container, as by dockerd (which calls
        an unknown one "not found" for a running container, "not connected" for another)."""
        network = self._find(ref)
        atts = self.attachments(container.id)
        if network is None:
            kept = [a for a in atts if a.network_id in self._networks or ref not in (a.ref, a.network_id)]
            if len(kept) == len(atts):
                if container.state.status.is_live():
                    raise errors.NotFound(f"network {ref} not found")
                raise errors.SystemError_(f"container {container.id} is not connected to the network {ref}")
            await trio.to_thread.run_sync(self._attachments.save, container.id, kept)
            return
        if not any(a.network_id == network.id for a in atts):
            raise errors.Forbidden(f"container {container.id} is not connected to network {network.name}")
        ep = self._endpoints.get(container.id, {}).pop(network.id, None)
        if ep is not None:
            await trio.to_thread.run_sync(saved_endpoints.save, self._endpoints_dir, container.id,
                                          self._endpoints.get(container.id))
            await self._leave(network.id, ep, stopped=False)
            if ep.ports:
                await self._apply_nft()
        await trio.to_thread.run_sync(self._attachments.save, container.id,
                                      [a for a in atts if a.network_id != network.id])
        self._publish(network, "disconnect", container.id)  # a stopped one's too, as dockerd

    # --- events ---------------------------------------------------------------------------
    def _publish(self, network: Network, action: str, container_id: str | None = None) -> None:
        attributes = {"name": network.name, "type": network.driver}
        if container_id:
            attributes["container"] = container_id
        self.events.publish("network", action, network.id, attributes)


def _copy(mapping: dict | None) -> dict | None:
    return dict(mapping) if mapping is not None else None

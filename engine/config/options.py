"""pyengined's options: one table for the command-line flags and the configuration file
(daemon.json, dockerd's format and key names), so both read every option the same way.

    pyengined --config-file /etc/pyengine/daemon.json --log-opt max-size=10m

As dockerd: the file is a JSON object of option keys ("log-opts", "dns", "hosts"…); a key
that names no option, or an option given both as a flag and in the file, is an error, as is a
missing file named by --config-file (the default path may be absent). Values are checked
here for their shape (sizes, CIDRs, key=value pairs); `engine.daemon` checks what depends on
the engine (a log driver it has, ulimit names, a seccomp profile file). At SIGHUP `reload`
reads the file again for the options a running daemon takes (RELOADABLE).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import logging
import os
import re
from collections.abc import Callable
from typing import Any

import attrs

from engine import units

log = logging.getLogger(__name__)

DEFAULT_CONFIG_FILE = "/etc/pyengine/daemon.json"


class ConfigError(Exception):
    """A bad option or configuration file: the daemon refuses to start with this message."""


@attrs.frozen
class AddressPool:
    """Networks created without a subnet get one of `base` split into /`size` subnets."""

    base: str  # "10.10.0.0/16"
    size: int  # 24


@attrs.frozen
class DefaultUlimit:
    name: str
    soft: int
    hard: int


# ------------------------------------------------------------------------- value parsers
# Each takes the option's JSON value (a flag's value is first turned into that shape) and
# returns the Config value, raising ValueError with what is wrong.

def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {json.dumps(value)}")
    return value


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {json.dumps(value)}")
    return value


def _strings(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"expected a list of strings, got {json.dumps(value)}")
    return list(value)


def _string_map(value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ValueError(f"expected an object of strings, got {json.dumps(value)}")
    return dict(value)


def _bridge(value: Any) -> str:
    name = _string(value)
    if name == "none":
        raise ValueError("a daemon without a default bridge network (none) is not supported")
    if not name or len(name) > 15 or "/" in name or name.strip() != name:
        raise ValueError(f"invalid interface name {name!r}")
    return name


LOG_LEVELS = ("debug", "info", "warn", "error", "fatal")


def _log_level(value: Any) -> str:
    level = _string(value)
    level = "warn" if level == "warning" else level
    if level not in LOG_LEVELS:
        raise ValueError(f"unable to parse logging level: {level}")
    return level


def _storage_driver(value: Any) -> str:
    driver = _string(value)
    if driver != "overlay2":
        raise ValueError(f"{driver}: pyengine stores layers with overlay2 only")
    return driver


def _exec_opts(value: Any) -> list[str]:
    """native.cgroupdriver=cgroupfs, the one cgroup driver this engine has."""
    for opt in _strings(value):
        key, _, val = opt.partition("=")
        if key.strip() != "native.cgroupdriver":
            raise ValueError(f"unknown exec-opt {opt!r}")
        if val.strip() != "cgroupfs":
            raise ValueError(f"native.cgroupdriver={val.strip()}: pyengine manages cgroups through cgroupfs only")
    return _strings(value)


def _not_experimental(value: Any) -> bool:
    if _boolean(value):
        raise ValueError("pyengine has no experimental features to turn on")
    return False


def _cgroupns_mode(value: Any) -> str:
    mode = _string(value)
    if mode not in ("host", "private"):
        raise ValueError(f'default cgroup namespace mode must be "host" or "private", not "{mode}"')
    return mode


def _ipc_mode(value: Any) -> str:
    mode = _string(value)
    if mode not in ("private", "shareable"):
        raise ValueError(f'invalid default IPC mode "{mode}": must be "private" or "shareable"')
    return mode


def _ip_address(value: Any) -> str:
    return _ip_addresses([_string(value)])[0]


def _group(value: Any) -> int:
    """A group name or number → its gid (the API sockets' group)."""
    import grp

    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else _string(value)
    if text.isdigit():
        return int(text)
    try:
        return grp.getgrnam(text).gr_gid
    except KeyError:
        raise ValueError(f"group {text} not found") from None


def _integer(value: Any, minimum: int, what: str) -> int:
    """A JSON number (or a flag's digits) of at least `minimum`."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"expected {what}, got {json.dumps(value)}")
    return value


def _positive(value: Any) -> int:
    return _integer(value, 1, "a positive number")


def _seconds(value: Any) -> int:
    return _integer(value, 0, "a number of seconds (0 or more)")


def _mtu(value: Any) -> int:
    mtu = _positive(value)
    if not 68 <= mtu <= 65535:
        raise ValueError(f"invalid MTU {mtu}: it must be a number from 68 to 65535")
    return mtu


def _size(value: Any) -> int:
    text = _string(value) if not isinstance(value, int) or isinstance(value, bool) else str(value)
    try:
        return units.ram_in_bytes(text)
    except ValueError:
        raise ValueError(f"invalid size: {text!r}") from None


def _spill_size(value: Any) -> int:
    size = _size(value)
    if size < 1 << 16:
        raise ValueError("the spill size must be at least 64k")
    return size


def _shm_size(value: Any) -> int:
    size = _size(value)
    if size <= 0:
        raise ValueError(f"invalid size: {value!r}: must be greater than 0")
    return size


def _ip_addresses(value: Any) -> list[str]:
    out = []
    for text in _strings(value):
        try:
            out.append(str(ipaddress.ip_address(text)))
        except ValueError:
            raise ValueError(f"{text} is not an ip address") from None
    return out


PROXY_KEYS = ("http-proxy", "https-proxy", "no-proxy")


def _proxies(value: Any) -> dict[str, str]:
    """{"http-proxy": URL, "https-proxy": URL, "no-proxy": "host,.domain,CIDR"} (dockerd's)."""
    proxies = _string_map(value)
    unknown = [key for key in proxies if key not in PROXY_KEYS]
    if unknown:
        raise ValueError(f"unknown proxy setting {unknown[0]!r}: one of {', '.join(PROXY_KEYS)}")
    for key in ("http-proxy", "https-proxy"):
        if proxies.get(key):
            from urllib.parse import urlsplit

            url = urlsplit(proxies[key])
            if url.scheme not in ("http", "https", "socks5") or not url.hostname:
                raise ValueError(f"invalid {key} {proxies[key]!r}: expected scheme://host[:port]")
    return {key: proxies[key] for key in PROXY_KEYS if proxies.get(key)}


def _mirrors(value: Any) -> list[str]:
    """dockerd's ValidateMirror: an http(s) URL of a host, nothing after it but "/";
    normalized with a trailing slash."""
    from urllib.parse import urlsplit

    out = []
    for text in _strings(value):
        url = urlsplit(text)
        if url.scheme not in ("http", "https"):
            raise ValueError(f'invalid mirror: unsupported scheme "{url.scheme}" in "{text}"')
        if not url.hostname or url.username or url.password:
            raise ValueError(f'invalid mirror: no host in "{text}"' if not url.hostname
                             else f'invalid mirror: username/password not allowed in URI "{text}"')
        if url.path not in ("", "/") or url.query or url.fragment:
            raise ValueError(f'invalid mirror: path, query, or fragment at end of the URI "{text}"')
        out.append(f"{url.scheme}://{url.netloc}/")
    return list(dict.fromkeys(out))


_HOST = re.compile(r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
                   r"(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*")


def _insecure_registries(value: Any) -> list[str]:
    """dockerd's loadInsecureRegistries: each a CIDR or host[:port]; an http:// or https://
    in front is dropped (with a warning), any other scheme refused, as is a bad host, port
    or CIDR (an entry with a "/" that is not one names no host)."""
    out = []
    for entry in _strings(value):
        if entry.startswith("-") or entry.endswith("-"):
            raise ValueError(f"invalid index name ({entry}). Cannot begin or end with a hyphen")
        text = entry
        for scheme in ("http://", "https://"):
            if text.lower().startswith(scheme):
                log.warning("insecure registry %s should not contain '%s' and '%s' has been removed from the "
                            "insecure registry config", entry, scheme, scheme)
                text = text[len(scheme):]
                break
        else:
            if "://" in text:
                raise ValueError(f"insecure registry {entry} should not contain '://'")
        try:
            network = ipaddress.ip_network(text, strict=False) if "/" in text else None
        except ValueError:
            network = None
        if network is not None:
            out.append(str(network))
            continue
        host, port = text, ""
        if text.startswith("[") and "]:" in text:
            host, port = text[1:].split("]:", 1)
        elif text.count(":") == 1:
            host, port = text.split(":")
        if not _HOST.fullmatch(host):
            try:
                ipaddress.ip_address(host.strip("[]"))
            except ValueError:
                raise ValueError(f'insecure registry {entry} is not valid: invalid host "{host}"') from None
        if port and (not port.isdigit() or int(port) > 65535):
            raise ValueError(f'insecure registry {entry} is not valid: invalid port "{port}"')
        out.append(text)
    return list(dict.fromkeys(out))


def _labels(value: Any) -> list[str]:
    """dockerd's rule: key=value each; a key given twice must have the same value."""
    seen: dict[str, str] = {}
    for label in _strings(value):
        key, sep, val = label.partition("=")
        if not sep or not key:
            raise ValueError(f"bad attribute format: {label}")
        if seen.setdefault(key, val) != val:
            raise ValueError(f"conflict labels for {key}={seen[key]} and {key}={val}")
    return list(dict.fromkeys(_strings(value)))


def _address_pools(value: Any) -> list[AddressPool]:
    if not isinstance(value, list):
        raise ValueError(f"expected a list of {{\"base\": CIDR, \"size\": prefix length}}, got {json.dumps(value)}")
    pools = []
    for item in value:
        if not isinstance(item, dict) or set(item) - {"base", "size"} or "base" not in item:
            raise ValueError(f"invalid address pool {json.dumps(item)}: expected base and size")
        try:
            base = ipaddress.ip_network(_string(item["base"]))
        except ValueError:
            raise ValueError(f"invalid base pool {item['base']!r}") from None
        size = item.get("size", 24)
        if not isinstance(size, int) or isinstance(size, bool) or not base.prefixlen <= size <= base.max_prefixlen:
            raise ValueError(f"invalid pools size: {size} (base {base} allows {base.prefixlen}-{base.max_prefixlen})")
        pools.append(AddressPool(str(base), size))
    return pools


def _ulimits(value: Any) -> list[DefaultUlimit]:
    """{"nofile": {"Name": "nofile", "Soft": 1024, "Hard": 2048}}, as dockerd's file."""
    if not isinstance(value, dict):
        raise ValueError(f"expected an object of ulimits, got {json.dumps(value)}")
    out = []
    for name, limit in value.items():
        if not isinstance(limit, dict):
            raise ValueError(f"invalid ulimit {name}: {json.dumps(limit)}")
        soft, hard = limit.get("Soft", 0), limit.get("Hard", 0)
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (soft, hard)):
            raise ValueError(f"invalid ulimit {name}: Soft and Hard must be integers")
        if soft > hard:
            raise ValueError(f"ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}")
        out.append(DefaultUlimit(limit.get("Name") or name, soft, hard))
    return out


# ------------------------------------------------------------------------- flag values
# A flag's text(s) into the JSON shape of its file key.

def _boolean_text(text: str) -> bool:
    """A flag's true/false (Go's strconv.ParseBool words)."""
    lowered = text.lower()
    if lowered in ("1", "t", "true"):
        return True
    if lowered in ("0", "f", "false"):
        return False
    raise ValueError(f"invalid boolean {text!r}")


def _pairs(texts: list[str]) -> dict[str, str]:
    out = {}
    for text in texts:
        key, sep, value = text.partition("=")
        if not sep or not key:
            raise ValueError(f"invalid key=value: {text!r}")
        out[key] = value
    return out


def _pool_flags(texts: list[str]) -> list[dict]:
    """--default-address-pool base=10.10.0.0/16,size=24"""
    pools = []
    for text in texts:
        fields = _pairs(text.split(","))
        if "size" in fields:
            try:
                fields["size"] = int(fields["size"])
            except ValueError:
                raise ValueError(f"invalid size in address pool {text!r}") from None
        pools.append(fields)
    return pools


def _ulimit_flags(texts: list[str]) -> dict:
    """--default-ulimit nofile=1024:2048 (one number: soft and hard)."""
    out = {}
    for text in texts:
        try:
            name, soft, hard = units.parse_ulimit(text)
        except ValueError:
            name = ""
        if not name or "=" not in text:
            raise ValueError(f"invalid ulimit {text!r}: expected name=soft[:hard]")
        out[name] = {"Name": name, "Soft": soft, "Hard": hard}
    return out


# ------------------------------------------------------------------------- the table

@attrs.frozen
class Option:
    key: str  # the daemon.json key
    field: str  # the Config attribute
    parse: Callable[[Any], Any]
    flags: tuple[str, ...] = ()  # none: file only
    help: str = ""
    repeat: bool = False  # a flag given once per value
    switch: bool | None = None  # a flag without a value setting this
    # the flag's text (a list of them when repeated) → the file key's JSON shape
    from_flags: Callable[[Any], Any] | None = None
    metavar: str | None = None
    in_file: bool = True  # False: a flag only
    keyed: bool = False  # one flag per key of the file's object: --https-proxy V → "https-proxy=V"


OPTIONS: tuple[Option, ...] = (
    Option("data-root", "data_root", _string, ("--data-root",), "where images, containers and volumes live"),
    Option("exec-root", "exec_root", _string, ("--exec-root",), "host-wide state shared by this host's daemons"),
    Option("hosts", "hosts", _strings, ("-H", "--host"), "listen address (unix:///path or tcp://host:port)",
           repeat=True),
    Option("cgroup-parent", "cgroup_parent", _string, ("--cgroup-parent",), "cgroup of the containers"),
    Option("bridge", "bridge_name", _bridge, ("-b", "--bridge", "--bridge-name"),
           "device name of the default bridge network"),
    Option("bip", "bip", _string, ("--bip",), "default bridge gateway address/prefix, e.g. 10.99.0.1/24"),
    Option("plugin-dirs", "plugin_dirs", _strings, ("--plugin-dir",),
           "directory searched for Docker plugin sockets", repeat=True),
    Option("live-restore", "live_restore", _boolean, ("--live-restore",),
           "containers keep running when the daemon stops (default)", switch=True),
    Option("no-live-restore", "live_restore", lambda v: not _boolean(v), ("--no-live-restore",),
           "stopping the daemon stops its containers", switch=True, in_file=False),
    Option("spawner", "spawner", _boolean, ("--no-spawner",),
           "clone containers from the daemon process (no live restore)", switch=False),
    Option("spill-max-size", "spill_max", _spill_size, ("--spill-max-size",),
           "output kept per container while no daemon logs it, e.g. 64m (default)", metavar="SIZE"),
    Option("tlsverify", "tlsverify", _boolean, ("--tlsverify",), "require client certificates", switch=True),
    Option("tlscacert", "tlscacert", _string, ("--tlscacert",)),
    Option("tlscert", "tlscert", _string, ("--tlscert",)),
    Option("tlskey", "tlskey", _string, ("--tlskey",)),
    Option("debug", "debug", _boolean, ("-D", "--debug"), "debug logging", switch=True),
    Option("log-level", "log_level", _log_level, ("-l", "--log-level"), "debug, info (default), warn, error or fatal"),
    Option("storage-driver", "storage_driver", _storage_driver, ("-s", "--storage-driver"), "overlay2 (the only one)"),
    Option("exec-opts", "exec_opts", _exec_opts, ("--exec-opt",), "native.cgroupdriver=cgroupfs (the only one)",
           repeat=True),
    Option("experimental", "experimental", _not_experimental),
    Option("max-concurrent-downloads", "max_concurrent_downloads", _positive, ("--max-concurrent-downloads",),
           "layers downloaded at once per pull (3)"),
    Option("max-concurrent-uploads", "max_concurrent_uploads", _positive, ("--max-concurrent-uploads",),
           "layers uploaded at once per push (3)"),
    Option("default-cgroupns-mode", "default_cgroupns_mode", _cgroupns_mode, ("--default-cgroupns-mode",),
           "containers' cgroup namespace: private (default) or host"),
    Option("mtu", "mtu", _mtu, ("--mtu",), "MTU of the default bridge network (1500)"),
    Option("icc", "icc", _boolean, ("--icc",), "containers on the default bridge reach each other (true)",
           from_flags=_boolean_text, metavar="true|false"),
    Option("ip", "ip", _ip_address, ("--ip",), "host address of ports published without one (0.0.0.0)"),
    Option("init", "init", _boolean, ("--init",), "containers run pe-init as PID 1 unless they say", switch=True),
    Option("no-new-privileges", "no_new_privileges", _boolean, ("--no-new-privileges",),
           "containers get no-new-privileges unless they say", switch=True),
    Option("default-ipc-mode", "default_ipc_mode", _ipc_mode, ("--default-ipc-mode",),
           "containers' IPC mode: private (default) or shareable"),
    Option("seccomp-profile", "seccomp_profile", _string, ("--seccomp-profile",),
           "containers' default seccomp profile: a JSON file, unconfined or builtin (Docker's)", metavar="PATH"),
    Option("shutdown-timeout", "shutdown_timeout", _seconds, ("--shutdown-timeout",),
           "seconds a stop without live restore gives containers to stop (15)", metavar="SECONDS"),
    Option("pidfile", "pidfile", _string, ("-p", "--pidfile"), "file the daemon writes its pid to"),
    Option("group", "group", _group, ("-G", "--group"), "group of the unix API sockets (root's by default)"),
    Option("log-driver", "log_driver", _string, ("--log-driver",), "containers' default log driver (json-file)"),
    Option("log-opts", "log_opts", _string_map, ("--log-opt",), "default log driver option key=value",
           repeat=True, from_flags=_pairs),
    Option("dns", "dns", _ip_addresses, ("--dns",), "DNS server for containers", repeat=True),
    Option("dns-search", "dns_search", _strings, ("--dns-search",), "DNS search domain for containers", repeat=True),
    Option("dns-opts", "dns_options", _strings, ("--dns-opt",), "DNS option for containers", repeat=True),
    Option("default-address-pools", "default_address_pools", _address_pools, ("--default-address-pool",),
           "subnets for networks: base=CIDR,size=prefix length", repeat=True, from_flags=_pool_flags),
    Option("insecure-registries", "insecure_registries", _insecure_registries, ("--insecure-registry",),
           "registry (host[:port] or CIDR) spoken to over plain http", repeat=True),
    Option("registry-mirrors", "registry_mirrors", _mirrors, ("--registry-mirror",),
           "Docker Hub mirror (http(s)://host[:port]), tried before the Hub", repeat=True),
    Option("proxies", "proxies", _proxies, ("--http-proxy", "--https-proxy", "--no-proxy"),
           "the daemon's own proxy (registries): --http-proxy URL, --https-proxy URL, --no-proxy LIST",
           repeat=True, from_flags=_pairs, metavar="VALUE", keyed=True),
    Option("labels", "labels", _labels, ("--label",), "daemon label key=value", repeat=True),
    Option("default-ulimits", "default_ulimits", _ulimits, ("--default-ulimit",),
           "containers' default ulimit name=soft[:hard]", repeat=True, from_flags=_ulimit_flags),
    Option("default-shm-size", "default_shm_size", _shm_size, ("--default-shm-size",),
           "containers' default /dev/shm size (64M)", metavar="SIZE"),
)

_BY_KEY = {o.key: o for o in OPTIONS}


def add_flags(parser: argparse.ArgumentParser) -> None:
    """Every option's flags; a flag not given leaves no attribute (so the file may set it)."""
    for o in OPTIONS:
        if not o.flags:
            continue
        kw: dict[str, Any] = {"dest": o.key, "help": o.help or None, "default": argparse.SUPPRESS}
        if o.switch is not None:
            kw.update(action="store_const", const=True)
        else:
            kw["metavar"] = o.metavar or o.flags[-1].lstrip("-").upper().replace("-", "_")
            if o.repeat:
                kw["action"] = "append"
        if o.keyed:
            for flag in o.flags:
                parser.add_argument(flag, **{**kw, "action": _KeyedAppend,
                                             "help": f"the daemon's own {flag[2:].replace('-', ' ')} (registries)"})
            continue
        parser.add_argument(*o.flags, **kw)


class _KeyedAppend(argparse.Action):
    """--https-proxy URL → "https-proxy=URL" in the option's list (read by _pairs)."""

    def __call__(self, parser, namespace, values, option_string=None):
        items = list(getattr(namespace, self.dest, None) or [])
        items.append(f"{option_string.lstrip('-')}={values}")
        setattr(namespace, self.dest, items)


def read_file(path: str, explicit: bool) -> dict[str, Any]:
    """The file's options ({} when the default file is absent)."""
    try:
        with open(path, "rb") as f:
            text = f.read()
    except FileNotFoundError:
        if not explicit:
            return {}
        raise ConfigError(f"unable to configure the daemon with file {path}: open {path}: no such file or directory")
    except OSError as exc:
        raise ConfigError(f"unable to configure the daemon with file {path}: {exc.strerror}") from None
    try:
        doc = json.loads(text) if text.strip() else {}
    except ValueError as exc:
        raise ConfigError(f"unable to configure the daemon with file {path}: {exc}") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"unable to configure the daemon with file {path}: not a JSON object")
    unknown = [key for key in doc if key not in _BY_KEY or not _BY_KEY[key].in_file]
    if unknown:
        raise ConfigError(f"unable to configure the daemon with file {path}: the following directives don't "
                          f"match any configuration option: {', '.join(unknown)}")
    return doc


def merge(flags: dict[str, Any], file_values: dict[str, Any], path: str) -> dict[str, Any]:
    """Config attribute → value from the flags given (argparse's attributes, keyed by option
    key) and the file's keys. Both naming one option is an error, as with dockerd."""
    given_flags = {}
    for key, raw in flags.items():
        option = _BY_KEY[key]
        if option.switch is not None:
            raw = option.switch
        elif option.from_flags is not None:
            try:
                raw = option.from_flags(raw)
            except ValueError as exc:
                raise ConfigError(f"invalid argument for {option.flags[-1]}: {exc}") from None
        given_flags[key] = raw
    fields: dict[str, str] = {}
    for key in given_flags:
        other = fields.setdefault(_BY_KEY[key].field, key)
        if other != key:  # --live-restore with --no-live-restore
            raise ConfigError(f"conflicting options: {_BY_KEY[other].flags[-1]} and {_BY_KEY[key].flags[-1]}")
    both = [key for key in given_flags if key in file_values or _same_field(key, file_values)]
    if both:
        detail = ", ".join(f"{key}: (from flag: {_show(given_flags[key])}, "
                           f"from file: {_show(_file_value(key, file_values))})" for key in both)
        raise ConfigError(f"unable to configure the daemon with file {path}: the following directives are "
                          f"specified both as a flag and in the configuration file: {detail}")
    out: dict[str, Any] = {}
    for source, values in (("flag", given_flags), ("file", file_values)):
        for key, raw in values.items():
            option = _BY_KEY[key]
            try:
                out[option.field] = option.parse(raw)
            except ValueError as exc:
                where = option.flags[-1] if source == "flag" else f'"{key}" in {path}'
                raise ConfigError(f"invalid value for {where}: {exc}") from None
    return out


def _same_field(key: str, file_values: dict) -> bool:
    """--no-live-restore and "live-restore" set one thing."""
    field = _BY_KEY[key].field
    return any(_BY_KEY[k].field == field for k in file_values)


def _file_value(key: str, file_values: dict) -> Any:
    field = _BY_KEY[key].field
    return next(v for k, v in file_values.items() if _BY_KEY[k].field == field)


def _show(value: Any) -> str:
    return json.dumps(value) if not isinstance(value, str) else value


def config_file_path(explicit: str | None) -> tuple[str, bool]:
    """(path, whether it was named): --config-file, else PYENGINE_CONFIG_FILE, else the default."""
    if explicit:
        return explicit, True
    env = os.environ.get("PYENGINE_CONFIG_FILE")
    return (env, True) if env else (DEFAULT_CONFIG_FILE, False)


# ------------------------------------------------------------------------- reload (SIGHUP)

#: What a running daemon takes again from its file at SIGHUP (those of dockerd's reloadable
#: options that pyengine has); other changes wait for a restart.
RELOADABLE = ("debug", "log_level", "labels", "insecure_registries", "registry_mirrors",
              "max_concurrent_downloads", "max_concurrent_uploads", "shutdown_timeout")


@attrs.frozen
class Sources:
    """Where a daemon's options came from, to read them again."""

    path: str  # the configuration file
    named: bool  # given by --config-file or $PYENGINE_CONFIG_FILE (so it must exist)
    flags: dict  # the flags given, as argparse left them


def reload(sources: Sources, current) -> tuple[dict[str, Any], list[str]]:
    """The file read again with the same flags: (reloadable Config attributes it sets to
    another value → that value, keys of other options it sets otherwise). As dockerd, an
    option the file no longer names keeps its value. `current`: the running Config. Raises
    ConfigError as at start."""
    values = merge(sources.flags, read_file(sources.path, sources.named), sources.path)
    changed = {field: values[field] for field in RELOADABLE
               if field in values and values[field] != getattr(current, field)}
    waiting = [o.key for o in OPTIONS if o.field not in RELOADABLE and o.field in values
               and values[o.field] != getattr(current, o.field)]
    return changed, list(dict.fromkeys(waiting))

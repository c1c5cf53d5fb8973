"""Dockerfile instructions allowed in `docker import --change` / `docker commit --change`."""

import json
import shlex

from engine.errors import InvalidParameter

ALLOWED = ("CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "ONBUILD", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR")


def _json_or_shell(arg: str) -> list[str]:
    """Exec (JSON array) form as is; shell form → ["/bin/sh", "-c", arg]."""
    s = arg.strip()
    if s.startswith("["):
        try:
            value = json.loads(s)
        except ValueError:
            value = None
        if isinstance(value, list) and all(isinstance(x, str) for x in value):
            return value
    return ["/bin/sh", "-c", s]


def _json_or_words(arg: str) -> list[str]:
    s = arg.strip()
    if s.startswith("["):
        try:
            value = json.loads(s)
            if isinstance(value, list) and all(isinstance(x, str) for x in value):
                return value
        except ValueError:
            pass
    return s.split()


def _pairs(instr: str, arg: str) -> list[tuple[str, str]]:
    """ENV/LABEL: "k=v k2='v 2'" or the legacy "k v w" form."""
    try:
        words = shlex.split(arg, posix=True)
    except ValueError as e:
        raise InvalidParameter(f"{instr}: {e}") from None
    if not words:
        raise InvalidParameter(f"{instr} requires at least one argument")
    if "=" not in words[0]:
        if instr == "LABEL":
            raise InvalidParameter("LABEL requires key=value pairs")
        key, _, rest = arg.strip().partition(" ")
        return [(key, rest.strip())]
    out = []
    for w in words:
        if "=" not in w:
            raise InvalidParameter(f"{instr} names can not be blank / syntax error near {w!r}")
        k, v = w.split("=", 1)
        if not k:
            raise InvalidParameter(f"{instr} names can not be blank")
        out.append((k, v))
    return out


def apply_changes(config: dict, changes) -> dict:
    """Apply change lines to an image's container config (the "config" key), in place."""
    for line in changes or ():
        line = line.strip()
        if not line:
            continue
        instr, _, arg = line.partition(" ")
        instr = instr.upper()
        if instr not in ALLOWED:
            raise InvalidParameter(f"{instr.lower()} is not a valid change command")  # dockerd's case
        if not arg.strip() and instr not in ("CMD", "ENTRYPOINT"):
            raise InvalidParameter(f"{instr} requires at least one argument")
        if instr == "CMD":
            config["Cmd"] = _json_or_shell(arg)
        elif instr == "ENTRYPOINT":
            config["Entrypoint"] = _json_or_shell(arg) if arg.strip() else None
        elif instr == "ENV":
            env = list(config.get("Env") or [])
            for k, v in _pairs(instr, arg):
                env = [e for e in env if e.split("=", 1)[0] != k] + [f"{k}={v}"]
            config["Env"] = env
        elif instr == "LABEL":
            labels = dict(config.get("Labels") or {})
            labels.update(_pairs(instr, arg))
            config["Labels"] = labels
        elif instr == "EXPOSE":
            ports = dict(config.get("ExposedPorts") or {})
            for p in arg.split():
                if "/" not in p:
                    p += "/tcp"
                num, proto = p.split("/", 1)
                if not num.replace("-", "").isdigit() or proto not in ("tcp", "udp", "sctp"):
                    raise InvalidParameter(f"invalid containerPort: {p}")
                ports[p] = {}
            config["ExposedPorts"] = ports
        elif instr == "VOLUME":
            vols = dict(config.get("Volumes") or {})
            for v in _json_or_words(arg):
                vols[v] = {}
            config["Volumes"] = vols
        elif instr == "WORKDIR":
            wd = arg.strip()
            config["WorkingDir"] = wd if wd.startswith("/") else "/" + wd
        elif instr == "USER":
            config["User"] = arg.strip()
        elif instr == "STOPSIGNAL":
            config["StopSignal"] = arg.strip()
        elif instr == "ONBUILD":
            config["OnBuild"] = list(config.get("OnBuild") or []) + [arg.strip()]
    return config

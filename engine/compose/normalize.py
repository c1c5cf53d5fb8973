"""Short syntaxes to long form: ports and volumes; relative paths made absolute."""

from __future__ import annotations

import copy
import os
import re
from typing import Any

from .errors import ConfigError


def _is_path(source: str) -> bool:
    return source.startswith(("/", ".", "~"))


def _abs(path: str, base_dir: str) -> str:
    return os.path.normpath(os.path.join(base_dir, os.path.expanduser(path)))


def resolve_paths(svc: dict, base_dir: str) -> dict:
    """A copy of a service with build contexts, env files and bind sources absolute."""
    svc = copy.deepcopy(svc)
    build = svc.get("build")
    if isinstance(build, dict) and build.get("context") is not None:
        ctx = str(build["context"])
        if "://" not in ctx and not ctx.startswith("git@"):
            build["context"] = _abs(ctx, base_dir)
    elif isinstance(build, dict):
        build["context"] = base_dir
    if svc.get("env_file"):
        svc["env_file"] = [
            {**e, "path": _abs(e["path"], base_dir)} if isinstance(e, dict) else
            _abs(e, base_dir) for e in svc["env_file"]]
    vols = []
    for vol in svc.get("volumes") or []:
        if isinstance(vol, str):
            parts = vol.split(":")
            if len(parts) > 1 and _is_path(parts[0]):
                parts[0] = _abs(parts[0], base_dir)
            vol = ":".join(parts)
        elif isinstance(vol, dict) and vol.get("type") == "bind" and vol.get("source"):
            vol = {**vol, "source": _abs(str(vol["source"]), base_dir)}
        vols.append(vol)
    if "volumes" in svc:
        svc["volumes"] = vols
    return svc


def normalize_volumes(items: list, where: str) -> list[dict]:
    out = []
    for i, vol in enumerate(items):
        if isinstance(vol, dict):
            v = dict(vol)
            v.setdefault("read_only", False)
            if v.get("type") == "volume" and not v.get("source"):
                v["source"] = ""
            out.append(v)
            continue
        parts = str(vol).split(":")
        if len(parts) == 1:
            out.append({"type": "volume", "source": "", "target": parts[0], "read_only": False})
            continue
        if len(parts) > 3:
            raise ConfigError(f"{where}[{i}]: invalid volume specification {vol!r}")
        source, target = parts[0], parts[1]
        modes = parts[2].split(",") if len(parts) == 3 else []
        if not target.startswith("/"):
            raise ConfigError(f"{where}[{i}]: {target!r} is not an absolute container path")
        v: dict[str, Any] = {"type": "bind" if _is_path(source) else "volume",
                             "source": source, "target": target, "read_only": "ro" in modes}
        if v["type"] == "bind":
            v["bind"] = {"create_host_path": True}
        if "nocopy" in modes:
            v["volume"] = {"nocopy": True}
        out.append(v)
    return out


_PORT = re.compile(r"^(?:(?P<ip>\[[^\]]*\]|[^:]*):)??(?:(?P<pub>[^:]*):)?(?P<target>[^:]+)$")


def _range(text: str, where: str) -> list[int]:
    try:
        if "-" in text:
            a, b = text.split("-", 1)
            return list(range(int(a), int(b) + 1))
        return [int(text)]
    except ValueError:
        raise ConfigError(f"{where}: invalid port {text!r}") from None


def normalize_ports(items: list, where: str) -> list[dict]:
    out = []
    for i, port in enumerate(items):
        w = f"{where}[{i}]"
        if isinstance(port, dict):
            out.append({"target": int(port["target"]),
                        "published": str(port.get("published") or ""),
                        "host_ip": port.get("host_ip") or "",
                        "protocol": port.get("protocol") or "tcp"})
            continue
        text = str(port)
        proto = "tcp"
        if "/" in text:
            text, proto = text.rsplit("/", 1)
        parts = text.rsplit(":", 2) if not text.startswith("[") else None
        if parts is None:
            m = _PORT.match(text)
            if not m:
                raise ConfigError(f"{w}: invalid port {port!r}")
            ip, pub, target = m.group("ip") or "", m.group("pub") or "", m.group("target")
        elif len(parts) == 3:
            ip, pub, target = parts
        elif len(parts) == 2:
            ip, (pub, target) = "", parts
        else:
            ip, pub, target = "", "", parts[0]
        targets = _range(target, w)
        pubs = _range(pub, w) if pub else []
        if pubs and len(pubs) != len(targets):
            if len(targets) == 1:  # "8000-8010:80": any one port of the range
                out.append({"target": targets[0], "published": pub, "host_ip": ip.strip("[]"),
                            "protocol": proto})
                continue
            raise ConfigError(f"{w}: port ranges of different sizes in {port!r}")
        for j, t in enumerate(targets):
            out.append({"target": t, "published": str(pubs[j]) if pubs else "",
                        "host_ip": ip.strip("[]"), "protocol": proto})
    return out

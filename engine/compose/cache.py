"""What compose remembers between commands, by content digest, under
$XDG_CACHE_HOME/pyengine (each `pyengine compose` is a fresh process and people run many
against unchanged files):
- compose-parsed/<sha256 of the file's text>.json: the file as parsed YAML, so that PyYAML is
  neither imported (~9 ms) nor run for a file read before;
- compose-valid/<digest>: documents found valid (engine.compose.schema), so jsonschema is not
  imported for them.
Only plain JSON data is cached (string keys; no dates, sets or binary): such a document reads
back exactly as parsed. Best effort: an unreadable or unwritable cache only means parsing or
validating again."""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

from .errors import ConfigError

ENTRIES = 512  # files kept per kind (the oldest half goes when there are more)
PARSE_FORMAT = "1"  # bump when the parsing changes: earlier entries no longer match


def directory(kind: str) -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "pyengine", kind)


def plain(value: Any) -> bool:
    """JSON data whose canonical dump identifies it (string keys only: {1: x} and {"1": x}
    dump alike but do not validate alike)."""
    if isinstance(value, dict):
        return all(isinstance(k, str) and plain(v) for k, v in value.items())
    if isinstance(value, list):
        return all(plain(v) for v in value)
    return value is None or isinstance(value, (str, int, float, bool))


def record(kind: str, name: str, data: bytes = b"") -> None:
    """Write <kind>/<name> (whole or not at all), trimming the directory when it is full."""
    d = directory(kind)
    path = os.path.join(d, name)
    try:
        os.makedirs(d, mode=0o700, exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        os.rename(tmp, path)
        names = os.listdir(d)
        if len(names) > ENTRIES:
            paths = sorted((os.path.join(d, n) for n in names), key=os.path.getmtime)
            for old in paths[:len(paths) // 2]:
                os.unlink(old)
    except OSError:
        pass


def exists(kind: str, name: str) -> bool:
    return os.path.exists(os.path.join(directory(kind), name))


def parse_yaml(text: str, source: str) -> Any:
    """The YAML document in `text` (safe loading), from the cache when this text was
    parsed before."""
    digest = hashlib.sha256(f"{PARSE_FORMAT}\0{text}".encode()).hexdigest()
    try:
        with open(os.path.join(directory("compose-parsed"), digest + ".json"),
                  encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        pass
    import io

    import yaml

    stream = io.StringIO(text)
    stream.name = source  # errors name the file and line
    try:
        # libyaml's loader when PyYAML has it (the same documents, parsed several times faster)
        doc = yaml.load(stream, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: invalid YAML: {exc}") from None
    if plain(doc):
        record("compose-parsed", digest + ".json",
               json.dumps(doc, ensure_ascii=False).encode())
    return doc

"""Client side of a build: a directory → the context tar the docker CLI sends (.dockerignore
applied, except to the Dockerfile and .dockerignore themselves; owners set to 0:0). Pure
file work, no daemon: API clients (the pyengine CLI, compose) use it."""

from __future__ import annotations

import os
import secrets
import tarfile
import tempfile

from .dockerignore import DockerIgnore


def pack_context(context: str, dockerfile: str = "Dockerfile", dockerfile_text: bytes | None = None):
    """Returns (a seekable tar file, the Dockerfile's name inside it). `dockerfile_text`
    (for `-f -` or a Dockerfile outside the context) is added under a random name, as the
    docker CLI does."""
    if not os.path.isdir(context):
        raise FileNotFoundError(f"unable to prepare context: path {context!r} not found")
    ignore = DockerIgnore([])
    try:
        with open(os.path.join(context, ".dockerignore"), "rb") as f:
            ignore = DockerIgnore.from_text(f.read())
    except FileNotFoundError:
        pass
    keep = {os.path.normpath(dockerfile), ".dockerignore"}
    out = tempfile.SpooledTemporaryFile(max_size=32 << 20)

    def reset(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        return info

    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for root, dirs, files in os.walk(context):
            dirs.sort()
            rel_root = os.path.relpath(root, context)
            for name in sorted(dirs) + sorted(files):
                full = os.path.join(root, name)
                rel = name if rel_root == "." else f"{rel_root}/{name}"
                if rel not in keep and ignore.matches(rel):
                    if name in dirs and not ignore.has_exceptions:
                        dirs.remove(name)
                    continue
                tar.add(full, arcname=rel, recursive=False, filter=reset)
        if dockerfile_text is not None:
            dockerfile = f".dockerfile.{secrets.token_hex(10)}"
            info = tarfile.TarInfo(dockerfile)
            info.size = len(dockerfile_text)
            info.mode = 0o644
            import io

            tar.addfile(info, io.BytesIO(dockerfile_text))
    out.seek(0)
    return out, dockerfile

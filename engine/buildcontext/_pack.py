"""A directory → the context tar the docker CLI sends: .dockerignore applied (except to the
Dockerfile and .dockerignore themselves), owners set to 0:0, a Dockerfile from outside the
context added under a random name."""

from __future__ import annotations

import io
import os
import secrets
import tarfile
import tempfile

from ._dockerignore import DockerIgnore


def pack_context(context: str, dockerfile: str = "Dockerfile", dockerfile_text: bytes | None = None):
    """Returns (a seekable tar file, the Dockerfile's name inside it). `dockerfile` is relative
    to the context or absolute; one outside the context, and `dockerfile_text` (`-f -`), is
    added under a random name as the docker CLI and docker-py do. Blocking: run in a thread."""
    if not os.path.isdir(context):
        raise FileNotFoundError(f"unable to prepare context: path {context!r} not found")
    if dockerfile_text is None:
        full = os.path.abspath(os.path.join(context, dockerfile))
        inside = os.path.relpath(full, os.path.abspath(context))
        if inside.startswith(os.pardir + os.sep):
            try:
                with open(full, "rb") as f:
                    dockerfile_text = f.read()
            except OSError as exc:
                raise OSError(f"unable to prepare context: {exc.strerror or exc}: {full}") from None
        else:
            dockerfile = inside
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
                    # walked on only when something below may be re-included (as the CLI's
                    # "!Dockerfile" / "!.dockerignore" exceptions do)
                    if name in dirs and not ignore.has_exceptions and \
                            not any(k.startswith(rel + "/") for k in keep):
                        dirs.remove(name)
                    continue
                tar.add(full, arcname=rel, recursive=False, filter=reset)
        if dockerfile_text is not None:
            dockerfile = f".dockerfile.{secrets.token_hex(10)}"
            info = tarfile.TarInfo(dockerfile)
            info.size = len(dockerfile_text)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(dockerfile_text))
    out.seek(0)
    return out, dockerfile

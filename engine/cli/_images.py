"""Image commands: images rmi tag import bootstrap."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Iterator

from ._app import Cli, CommandError, alias, arg, command
from ._client import ClientError
from ._format import (TemplateError, filters_param, human_size, iter_json_stream, parse_api_time,
                      parse_ref, render_rows, short_id, time_ago)

IMAGE_HEADERS = {"Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST", "ID": "IMAGE ID",
                 "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE",
                 "Containers": "CONTAINERS"}


def image_rows(images: list[dict], *, trunc: bool = True, digests: bool = False,
               now: float | None = None) -> list[dict]:
    rows = []
    for img in images:
        created = parse_api_time(img.get("Created"))
        base = {
            "ID": short_id(img.get("Id", "")) if trunc else img.get("Id", ""),
            "CreatedSince": time_ago(created, now),
            "CreatedAt": time.strftime("%Y-%m-%d %H:%M:%S %z %Z", time.localtime(created))
            if created else "",
            "Size": human_size(img.get("Size") or 0),
            "Containers": str(img.get("Containers", "N/A")),
        }
        tags = [t for t in img.get("RepoTags") or [] if t != "<none>:<none>"]
        repo_digests = [d for d in img.get("RepoDigests") or [] if d != "<none>@<none>"]
        digest_of = {d.split("@", 1)[0]: d.split("@", 1)[1] for d in repo_digests}
        if not tags:
            if repo_digests:
                for d in repo_digests:
                    repo, dg = d.split("@", 1)
                    rows.append({**base, "Repository": repo, "Tag": "<none>", "Digest": dg})
            else:
                rows.append({**base, "Repository": "<none>", "Tag": "<none>",
                             "Digest": "<none>"})
            continue
        for t in tags:
            repo, tag, _ = parse_ref(t)
            rows.append({**base, "Repository": repo, "Tag": tag or "<none>",
                         "Digest": digest_of.get(repo, "<none>")})
    return rows


@command("images", "List images",
         arg("repository", nargs="?", default=None),
         arg("-a", "--all", action="store_true", help="Show all images"),
         arg("-q", "--quiet", action="store_true", help="Only show image IDs"),
         arg("--digests", action="store_true", help="Show digests"),
         arg("--no-trunc", action="store_true", help="Don't truncate output"),
         arg("-f", "--filter", action="append", default=[], help="Filter output (k=v)"),
         arg("--format", default=None, help="Format output using a Go template"),
         aliases=("image ls", "image list"))
def images(cli: Cli, a: argparse.Namespace) -> int:
    flt = list(a.filter)
    if a.repository:
        flt.append(f"reference={a.repository}")
    try:
        filters = filters_param(flt)
    except ValueError as exc:
        raise CommandError(str(exc), 125) from None
    imgs = cli.client.get("/images/json", params={"all": a.all or None, "filters": filters,
                                                  "digests": a.digests or None}) or []
    imgs.sort(key=lambda i: i.get("Created") or 0, reverse=True)
    rows = image_rows(imgs, trunc=not a.no_trunc, digests=a.digests)
    if a.quiet:
        seen: list[str] = []
        for r in rows:
            if r["ID"] not in seen:
                seen.append(r["ID"])
        for i in seen:
            cli.print(i)
        return 0
    fmt = a.format or ("table {{.Repository}}\t{{.Tag}}\t" + ("{{.Digest}}\t" if a.digests else "")
                       + "{{.ID}}\t{{.CreatedSince}}\t{{.Size}}")
    try:
        sys.stdout.write(render_rows(fmt, rows, IMAGE_HEADERS))
    except TemplateError as exc:
        raise CommandError(f"template parsing error: {exc}") from None
    return 0


@command("rmi", "Remove one or more images",
         arg("-f", "--force", action="store_true", help="Force removal of the image"),
         arg("--no-prune", action="store_true", help="Do not delete untagged parents"),
         arg("images", nargs="+"), aliases=("image rm", "image remove"))
def rmi(cli: Cli, a: argparse.Namespace) -> int:
    failed = False
    for name in a.images:
        try:
            res = cli.client.delete(f"/images/{name}", params={"force": a.force or None,
                                                               "noprune": a.no_prune or None})
        except ClientError as exc:
            cli.warn(str(exc))
            failed = True
            continue
        for item in res or []:
            for key in ("Untagged", "Deleted"):
                if item.get(key):
                    cli.print(f"{key}: {item[key]}")
    return 1 if failed else 0


def split_tag(ref: str) -> tuple[str, str]:
    repo, tag, _ = parse_ref(ref)
    return repo, tag or "latest"


@command("tag", "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE",
         arg("source"), arg("target"), aliases=("image tag",))
def tag(cli: Cli, a: argparse.Namespace) -> int:
    repo, t = split_tag(a.target)
    cli.client.post(f"/images/{a.source}/tag", params={"repo": repo, "tag": t})
    return 0


def print_json_messages(cli: Cli, chunks: Iterator[bytes]) -> str | None:
    """Print a JSON message stream (status/progress/error lines); return the last status."""
    last = None
    for msg in iter_json_stream(chunks):
        if not isinstance(msg, dict):
            continue
        if msg.get("error") or msg.get("errorDetail"):
            err = msg.get("error") or (msg.get("errorDetail") or {}).get("message")
            raise CommandError(str(err))
        status = msg.get("status") or msg.get("stream")
        if status:
            line = f"{msg['id']}: {status}" if msg.get("id") and msg.get("status") else status
            cli.print(line.rstrip("\n"))
            last = msg.get("status")
    return last


def _file_chunks(f, size: int = 1 << 16) -> Iterator[bytes]:
    while True:
        data = f.read(size)
        if not data:
            return
        yield data


@command("import", "Import the contents from a tarball to create a filesystem image",
         arg("file", help="a tar file, a URL or - for stdin"),
         arg("reference", nargs="?", default=None),
         arg("-c", "--change", action="append", default=[], help="Apply Dockerfile instruction"),
         arg("-m", "--message", default=None, help="Set commit message for imported image"),
         arg("--platform", default=None, help="Set platform if server is multi-platform capable"),
         aliases=("image import",))
def import_(cli: Cli, a: argparse.Namespace) -> int:
    repo, t = (split_tag(a.reference) if a.reference else (None, None))
    is_url = a.file.startswith(("http://", "https://"))
    params = {"fromSrc": a.file if is_url else "-", "repo": repo, "tag": t,
              "message": a.message, "changes": a.change or None, "platform": a.platform}
    if is_url:
        content = None
        f = None
    elif a.file == "-":
        f = None
        content = _file_chunks(sys.stdin.buffer)
    else:
        try:
            f = open(a.file, "rb")
        except OSError as exc:
            raise CommandError(f"open {a.file}: {(exc.strerror or str(exc)).lower()}") from None
        content = _file_chunks(f)
    try:
        with cli.client.stream("POST", "/images/create", params=params, content=content,
                               headers={"Content-Type": "application/x-tar"}) as resp:
            print_json_messages(cli, resp.iter_raw())
    finally:
        if f is not None:
            f.close()
    return 0


@command("bootstrap", "Build a base image (busybox or debian[:suite]) without a registry",
         arg("distro", help="busybox | debian[:suite]"),
         arg("--tag", default=None, help="Tag for the new image (default: suite or latest)"))
def bootstrap(cli: Cli, a: argparse.Namespace) -> int:
    name, _, suite = a.distro.partition(":")
    if name not in ("busybox", "debian"):
        raise CommandError(f"unknown bootstrap image {name!r}: use busybox or debian[:suite]")
    params = {"name": name, "tag": a.tag or suite or "latest", "suite": suite or None}
    last = None
    with cli.client.stream("POST", "/images/bootstrap", params=params) as resp:
        for msg in iter_json_stream(resp.iter_raw()):
            if not isinstance(msg, dict):
                continue
            if msg.get("error") or msg.get("errorDetail"):
                err = msg.get("error") or (msg.get("errorDetail") or {}).get("message")
                raise CommandError(str(err))
            ident = msg.get("Id") or (msg.get("aux") or {}).get("ID")
            if ident:
                last = ident
            elif msg.get("status") or msg.get("stream"):
                cli.warn(str(msg.get("status") or msg.get("stream")).rstrip("\n"))
            if msg.get("status", "").startswith("sha256:"):
                last = msg["status"]
    if last:
        cli.print(last)
    return 0


alias("image bootstrap", "bootstrap")

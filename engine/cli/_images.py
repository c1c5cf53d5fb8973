"""Image commands: images rmi tag import bootstrap pull push history save load commit export
login logout, image prune."""

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
    if not last:
        raise CommandError("the daemon ended the bootstrap without an image")
    cli.print(last)
    return 0


alias("image bootstrap", "bootstrap")


# ---------------------------------------------------------------------------------------------
# registry credentials (CLI side, like docker's ~/.docker/config.json)


def config_path() -> str:
    """~/.pyengine/config.json, or $PYENGINE_CONFIG/config.json; written 0600."""
    import os

    base = os.environ.get("PYENGINE_CONFIG") or os.path.join(os.path.expanduser("~"), ".pyengine")
    return os.path.join(base, "config.json")


def _load_config() -> dict:
    import json

    try:
        with open(config_path()) as f:
            data = json.load(f)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _save_config(data: dict) -> None:
    import json
    import os

    path = config_path()
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def registry_of(ref: str) -> str:
    first, _, rest = ref.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return first
    return "docker.io"


def _server_key(server: str) -> str:
    import re

    s = re.sub(r"^[a-z]+://", "", server.strip()).split("/", 1)[0]
    return "docker.io" if s in ("", "index.docker.io", "registry-1.docker.io", "docker.io") else s


def auth_header(registry: str) -> dict:
    """X-Registry-Auth for a registry from the saved credentials ({} when none)."""
    import base64
    import json

    entry = (_load_config().get("auths") or {}).get(_server_key(registry))
    payload: dict = {"serveraddress": registry}
    if entry and entry.get("auth"):
        user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
        payload.update(username=user, password=password)
    elif entry and entry.get("identitytoken"):
        payload["identitytoken"] = entry["identitytoken"]
    else:
        return {}
    return {"X-Registry-Auth": base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()}


def show_progress(cli: Cli, chunks: Iterator[bytes], out=None) -> list[dict]:
    """Docker's JSON progress stream: one line per status; progress bars only on a tty.
    Returns the aux messages; raises CommandError on an error message. `out`: stdout, or
    stderr where stdout is a container's (run's pull)."""
    out = out or sys.stdout
    tty = out.isatty()
    aux = []
    for msg in iter_json_stream(chunks):
        if not isinstance(msg, dict):
            continue
        if msg.get("error") or msg.get("errorDetail"):
            err = msg.get("error") or (msg.get("errorDetail") or {}).get("message")
            raise CommandError(str(err))
        if msg.get("aux"):
            aux.append(msg["aux"])
            continue
        status = msg.get("status") or msg.get("stream")
        if not status:
            continue
        line = f"{msg['id']}: {status}" if msg.get("id") else status
        if msg.get("progress") or (msg.get("progressDetail") or {}).get("current"):
            if tty:
                out.write(f"\r{line} {msg.get('progress', '')}\x1b[K")
                out.flush()
            continue
        if tty:
            out.write("\r\x1b[K")
        out.write(line.rstrip("\n") + "\n")
    return aux


@command("pull", "Download an image from a registry",
         arg("-q", "--quiet", action="store_true", help="Suppress verbose output"),
         arg("--platform", default=None),
         arg("name"), aliases=("image pull",))
def pull(cli: Cli, a: argparse.Namespace) -> int:
    pull_image(cli, a.name, a.platform, quiet=a.quiet)
    if a.quiet:
        cli.print(a.name if ("@" in a.name or ":" in a.name.rsplit("/", 1)[-1]) else f"{a.name}:latest")
    return 0


def pull_image(cli: Cli, name: str, platform: str | None, *, quiet: bool, out=None) -> None:
    """POST /images/create with the saved credentials, its progress shown unless quiet."""
    params = {"fromImage": name, "platform": platform}
    with cli.client.stream("POST", "/images/create", params=params,
                           headers=auth_header(registry_of(name))) as resp:
        if quiet:
            for msg in iter_json_stream(resp.iter_raw()):
                if isinstance(msg, dict) and (msg.get("error") or msg.get("errorDetail")):
                    raise CommandError(str(msg.get("error") or msg["errorDetail"].get("message")))
        else:
            show_progress(cli, resp.iter_raw(), out)


@command("push", "Upload an image to a registry",
         arg("-q", "--quiet", action="store_true", help="Suppress verbose output"),
         arg("-a", "--all-tags", action="store_true", help="Push all tags of the repository"),
         arg("name"), aliases=("image push",))
def push(cli: Cli, a: argparse.Namespace) -> int:
    repo, tag_name, _ = parse_ref(a.name)
    if a.all_tags:
        tag_name = None
    elif not tag_name:
        tag_name = "latest"
    with cli.client.stream("POST", f"/images/{repo}/push", params={"tag": tag_name},
                           headers=auth_header(registry_of(a.name)) or {"X-Registry-Auth": "e30="}) as resp:
        if a.quiet:
            for msg in iter_json_stream(resp.iter_raw()):
                if isinstance(msg, dict) and (msg.get("error") or msg.get("errorDetail")):
                    raise CommandError(str(msg.get("error") or msg["errorDetail"].get("message")))
            cli.print(a.name)
        else:
            show_progress(cli, resp.iter_raw())
    return 0


@command("history", "Show the history of an image",
         arg("-H", "--human", action="store_true", default=True),
         arg("--no-trunc", action="store_true", help="Don't truncate output"),
         arg("-q", "--quiet", action="store_true", help="Only show image IDs"),
         arg("--format", default=None), arg("image"), aliases=("image history",))
def history(cli: Cli, a: argparse.Namespace) -> int:
    entries = cli.client.get(f"/images/{a.image}/history") or []
    rows = []
    for e in entries:
        ident = e.get("Id", "")
        if ident != "<missing>" and not a.no_trunc:
            ident = short_id(ident)
        created_by = e.get("CreatedBy", "")
        if not a.no_trunc and len(created_by) > 45:
            created_by = created_by[:44] + "…"
        rows.append({"ID": ident, "CreatedSince": time_ago(e.get("Created") or 0),
                     "CreatedBy": created_by, "Size": human_size(e.get("Size") or 0),
                     "Comment": e.get("Comment", "")})
    if a.quiet:
        for r in rows:
            cli.print(r["ID"])
        return 0
    fmt = a.format or "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
    headers = {"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedBy": "CREATED BY", "Size": "SIZE",
               "Comment": "COMMENT"}
    try:
        sys.stdout.write(render_rows(fmt, rows, headers))
    except TemplateError as exc:
        raise CommandError(f"template parsing error: {exc}") from None
    return 0


def _write_stream(cli: Cli, resp, output: str | None) -> None:
    import os

    if output:
        tmp = f"{output}.tmp-{os.getpid()}"
        try:
            with open(tmp, "wb") as f:
                for chunk in resp.iter_raw():
                    f.write(chunk)
            os.replace(tmp, output)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return
    if sys.stdout.isatty():
        raise CommandError("cowardly refusing to save to a terminal. Use the -o flag or redirect")
    for chunk in resp.iter_raw():
        cli.write_bytes(chunk)


@command("save", "Save one or more images to a tar archive (streamed to STDOUT by default)",
         arg("-o", "--output", default=None, help="Write to a file, instead of STDOUT"),
         arg("images", nargs="+"), aliases=("image save",))
def save(cli: Cli, a: argparse.Namespace) -> int:
    with cli.client.stream("GET", "/images/get", params={"names": a.images}) as resp:
        _write_stream(cli, resp, a.output)
    return 0


@command("load", "Load an image from a tar archive or STDIN",
         arg("-i", "--input", default=None, help="Read from tar archive file, instead of STDIN"),
         arg("-q", "--quiet", action="store_true", help="Suppress the load output"),
         aliases=("image load",))
def load(cli: Cli, a: argparse.Namespace) -> int:
    if a.input:
        try:
            f = open(a.input, "rb")
        except OSError as exc:
            raise CommandError(f"open {a.input}: {(exc.strerror or str(exc)).lower()}") from None
    else:
        if sys.stdin.isatty():
            raise CommandError("requested load from stdin, but stdin is empty")
        f = sys.stdin.buffer
    try:
        with cli.client.stream("POST", "/images/load", params={"quiet": a.quiet or None},
                               content=_file_chunks(f),
                               headers={"Content-Type": "application/x-tar"}) as resp:
            print_json_messages(cli, resp.iter_raw())
    finally:
        if a.input:
            f.close()
    return 0


@command("commit", "Create a new image from a container's changes",
         arg("-a", "--author", default=None, help="Author"),
         arg("-c", "--change", action="append", default=[], help="Apply Dockerfile instruction"),
         arg("-m", "--message", default=None, help="Commit message"),
         arg("-p", "--pause", action="store_true", default=True),
         arg("container"), arg("repository", nargs="?", default=None),
         aliases=("container commit",))
def commit(cli: Cli, a: argparse.Namespace) -> int:
    repo = t = None
    if a.repository:
        repo, t = split_tag(a.repository)
    res = cli.client.post("/commit", params={"container": a.container, "repo": repo, "tag": t,
                                             "comment": a.message, "author": a.author,
                                             "changes": a.change or None, "pause": a.pause})
    cli.print((res or {}).get("Id", ""))
    return 0


@command("export", "Export a container's filesystem as a tar archive",
         arg("-o", "--output", default=None, help="Write to a file, instead of STDOUT"),
         arg("container"), aliases=("container export",))
def export(cli: Cli, a: argparse.Namespace) -> int:
    with cli.client.stream("GET", f"/containers/{a.container}/export") as resp:
        _write_stream(cli, resp, a.output)
    return 0


@command("login", "Log in to a registry",
         arg("-u", "--username", default=None), arg("-p", "--password", default=None),
         arg("--password-stdin", action="store_true", help="Take the password from stdin"),
         arg("server", nargs="?", default="https://index.docker.io/v1/"))
def login(cli: Cli, a: argparse.Namespace) -> int:
    import base64
    import getpass

    user = a.username
    password = a.password
    if a.password_stdin:
        if password:
            raise CommandError("--password and --password-stdin are mutually exclusive")
        password = sys.stdin.readline().rstrip("\r\n")
    elif password:
        cli.warn("WARNING! Using --password via the CLI is insecure. Use --password-stdin.")
    if not user:
        if not sys.stdin.isatty():
            raise CommandError("Must provide --username with --password-stdin" if a.password_stdin
                               else "Cannot perform an interactive login from a non TTY device")
        user = input("Username: ").strip()
    if not password:
        password = getpass.getpass("Password: ")
    res = cli.client.post("/auth", {"username": user, "password": password, "serveraddress": a.server})
    data = _load_config()
    auths = data.setdefault("auths", {})
    entry = {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}
    if (res or {}).get("IdentityToken"):
        entry = {"identitytoken": res["IdentityToken"], "auth": entry["auth"]}
    auths[_server_key(a.server)] = entry
    _save_config(data)
    cli.print((res or {}).get("Status") or "Login Succeeded")
    return 0


@command("logout", "Log out from a registry", arg("server", nargs="?", default="https://index.docker.io/v1/"))
def logout(cli: Cli, a: argparse.Namespace) -> int:
    data = _load_config()
    key = _server_key(a.server)
    if key not in (data.get("auths") or {}):
        cli.print(f"Not logged in to {a.server}")
        return 0
    del data["auths"][key]
    _save_config(data)
    cli.print(f"Removing login credentials for {a.server}")
    return 0


@command("image prune", "Remove unused images",
         arg("-a", "--all", action="store_true", help="Remove all unused images, not just dangling ones"),
         arg("-f", "--force", action="store_true", help="Do not prompt for confirmation"),
         arg("--filter", action="append", default=[], help="Provide filter values"))
def image_prune(cli: Cli, a: argparse.Namespace) -> int:
    flt = list(a.filter)
    if a.all:
        flt.append("dangling=false")
    try:
        filters = filters_param(flt)
    except ValueError as exc:
        raise CommandError(str(exc), 125) from None
    if not a.force and sys.stdin.isatty():
        what = "all images without at least one container associated to them" if a.all else "all dangling images"
        answer = input(f"WARNING! This will remove {what}.\nAre you sure you want to continue? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            return 0
    res = cli.client.post("/images/prune", params={"filters": filters}) or {}
    cli.print_deleted("Images", res.get("ImagesDeleted") or [])
    cli.print(f"Total reclaimed space: {human_size(res.get('SpaceReclaimed') or 0)}")
    return 0


SEARCH_HEADERS = {"Name": "NAME", "Description": "DESCRIPTION", "StarCount": "STARS", "IsOfficial": "OFFICIAL",
                  "IsAutomated": "AUTOMATED"}
SEARCH_TABLE = "table {{.Name}}\t{{.Description}}\t{{.StarCount}}\t{{.IsOfficial}}"


@command("search", "Search a registry for images",
         arg("-f", "--filter", action="append", default=[], help="Filter output based on conditions provided"),
         arg("--format", default=None, help="Pretty-print search using a Go template"),
         arg("--limit", type=int, default=None, help="Max number of search results"),
         arg("--no-trunc", action="store_true", help="Don't truncate output"),
         arg("term"))
def search(cli: Cli, a: argparse.Namespace) -> int:
    from ._format import ellipsis

    try:
        filters = filters_param(a.filter)
    except ValueError as exc:
        raise CommandError(str(exc), 125) from None
    params = {"term": a.term, "filters": filters}
    if a.limit is not None:
        params["limit"] = str(a.limit)
    rows = [{
        "Name": r.get("name", ""),
        "Description": r.get("description", "") if a.no_trunc else ellipsis(r.get("description", ""), 45),
        "StarCount": str(r.get("star_count", 0)),
        "IsOfficial": "[OK]" if r.get("is_official") else "",
        "IsAutomated": "[OK]" if r.get("is_automated") else "",
    } for r in cli.client.get("/images/search", params=params) or []]
    try:
        cli.out.write(render_rows(a.format or SEARCH_TABLE, rows, SEARCH_HEADERS))
    except TemplateError as exc:
        raise CommandError(f"template parsing error: {exc}") from None
    return 0

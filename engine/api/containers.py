"""Docker's /containers routes: decode → validate → manager → Docker JSON (the container's
inspect and list JSON and the list filters are _container_shapes.py's)."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote_plus

import trio

from engine import errors
from engine.containers import usage
from engine.api._detach import Detacher, parse_detach_keys
from engine.api._hijack import MULTIPLEXED, RAW_STREAM, HijackedStream, frame
from engine.api._request import Request
from engine.api._responses import StreamingResponse, empty, json_deferred, json_response, json_stream
from engine.api import _container_json as container_json
from engine.api import _filters as filters_api
from engine.api._container_shapes import LIST_FILTERS, inspect_shape, matches, summary_shape, volume_points
from engine.api import networks as networks_api
from engine.api._router import Router
from engine.api._stats_json import NO_CPU_STATS, stats_shape
from engine.containers.model import ExitStatus, Status
from engine.timefmt import format_rfc3339nano, parse_since

router = Router()


@router.get("/containers/json")
async def list_containers(req: Request):
    daemon = req.daemon
    filters = req.query.filters(LIST_FILTERS)
    for ref in filters.get("before", []) + filters.get("since", []):
        daemon.containers.get(ref)  # a missing one is refused, also when nothing is listed
    show_all = req.query.bool("all")
    limit = req.query.int("limit", -1)
    if req.query.bool("latest"):
        limit = 1
    containers = sorted(daemon.containers.all(), key=lambda c: c.created_ns, reverse=True)
    if limit and limit > 0:
        show_all = True
    out, listed = [], []
    for c in containers:
        if not show_all and c.state.status not in (Status.RUNNING, Status.PAUSED, Status.RESTARTING) and "status" not in filters and "exited" not in filters:
            continue
        if not matches(c, filters, daemon):
            continue
        out.append(summary_shape(c, daemon))
        listed.append(c)
        if limit and limit > 0 and len(out) >= limit:
            break
    if req.query.bool("size"):
        for shape, (rw, rootfs) in zip(out, await usage.sizes(daemon.images, listed)):
            shape["SizeRw"], shape["SizeRootFs"] = rw, rootfs
    return json_response(out)


# --- create / inspect / lifecycle ------------------------------------------------------------
@router.post("/containers/create")
async def create(req: Request):
    body = await req.json(default=None)
    if body is None:
        raise errors.InvalidParameter("Config cannot be empty in order to create a container")
    config, host_config = container_json.create_request(body)
    endpoints = networks_api.endpoints_config(body)
    container, warnings = await req.daemon.containers.create(config, host_config, req.query.get("name"),
                                                             endpoints=endpoints, platform=req.query.get("platform") or "")
    return json_response({"Id": container.id, "Warnings": warnings}, status=201)


@router.get("/containers/{id}/json")
async def inspect(req: Request):
    c = req.daemon.containers.get(req.params["id"])
    shape = inspect_shape(c, req.daemon)
    if req.query.bool("size"):
        [(shape["SizeRw"], shape["SizeRootFs"])] = await usage.sizes(req.daemon.images, [c])
    return json_response(shape)


@router.post("/containers/{id}/start")
async def start(req: Request):
    await req.daemon.containers.start(req.params["id"])
    return empty(204)


@router.post("/containers/{id}/stop")
async def stop(req: Request):
    await req.daemon.containers.stop(req.params["id"], req.query.int("t"), req.query.get("signal") or None)
    return empty(204)


@router.post("/containers/{id}/restart")
async def restart(req: Request):
    await req.daemon.containers.restart(req.params["id"], req.query.int("t"), req.query.get("signal") or None)
    return empty(204)


@router.post("/containers/{id}/kill")
async def kill(req: Request):
    await req.daemon.containers.kill(req.params["id"], req.query.get("signal") or None)
    return empty(204)


@router.post("/containers/{id}/pause")
async def pause(req: Request):
    await req.daemon.containers.pause(req.params["id"])
    return empty(204)


@router.post("/containers/{id}/unpause")
async def unpause(req: Request):
    await req.daemon.containers.unpause(req.params["id"])
    return empty(204)


@router.post("/containers/{id}/rename")
async def rename(req: Request):
    await req.daemon.containers.rename(req.params["id"], req.query.get("name") or "")
    return empty(204)


@router.delete("/containers/{id}")
async def remove(req: Request):
    if req.query.bool("link"):
        return await remove_link(req)
    await req.daemon.containers.remove(req.params["id"], force=req.query.bool("force"), volumes=req.query.bool("v"))
    return empty(204)


@router.delete("/containers/{name:path}")
async def remove_link(req: Request):
    """`docker rm --link /parent/alias`: the parent forgets the link (no container goes)."""
    name = req.params.get("name") or req.params.get("id") or ""
    parent, _, alias = name.strip("/").rpartition("/")
    if not req.query.bool("link") or not parent:
        raise errors.NotFound(f"No such container: {name}")
    await req.daemon.networks.remove_link(req.daemon.containers.get(parent), alias)
    return empty(204)


@router.post("/containers/{id}/wait")
async def wait(req: Request):
    manager = req.daemon.containers
    container = manager.get(req.params["id"])
    condition = req.query.get("condition") or "not-running"
    if condition not in ("not-running", "next-exit", "removed"):
        raise errors.InvalidParameter(f"invalid condition: {condition!r}")

    def shape(status):
        # dockerd answers a wait for the removal without the error of a failed start (the
        # docker CLI's `run --rm` would print it a second time, as "Error waiting for container").
        error = status.error if condition != "removed" else ""
        return {"StatusCode": status.exit_code, "Error": {"Message": error} if error else None}

    status = manager.wait_nowait(container.id, condition)
    if status is not None:  # already holds: one complete response
        return json_response(shape(status))

    async def result():
        # Headers go out at once; the body when the condition holds (the CLI needs that).
        try:
            return shape(await manager.wait(container.id, condition))
        except errors.NotFound:  # removed before a second call (below): what the first answered
            return shape(ExitStatus(container.state.exit_code, container.state.error))

    # A wait for a state (not-running, removed) may be cancelled and called again, not one for
    # the next exit (it counts exits from its call on).
    return json_deferred(result, restartable=condition != "next-exit")


@router.post("/containers/{id}/resize")
async def resize(req: Request):
    await req.daemon.containers.resize(req.params["id"], req.query.int("h", 0), req.query.int("w", 0))
    return empty(200)


@router.post("/containers/prune")
async def prune(req: Request):
    filters = req.query.filters(filters_api.PRUNE)
    report = await req.daemon.containers.prune(filters_api.prune_filters(filters))
    return json_response({"ContainersDeleted": report.deleted or None, "SpaceReclaimed": report.space_reclaimed})


_UPDATE_INTS = (("memory", "Memory"), ("memory_swap", "MemorySwap"), ("memory_reservation", "MemoryReservation"),
                ("nano_cpus", "NanoCpus"), ("cpu_shares", "CpuShares"), ("cpu_quota", "CpuQuota"),
                ("cpu_period", "CpuPeriod"), ("blkio_weight", "BlkioWeight"), ("kernel_memory", "KernelMemory"),
                ("cpu_realtime_period", "CpuRealtimePeriod"), ("cpu_realtime_runtime", "CpuRealtimeRuntime"))


@router.post("/containers/{id}/update")
async def update(req: Request):
    from engine.runtime.cgroups import Resources

    body = await req.json(default=None) or {}
    if not isinstance(body, dict):
        raise errors.InvalidParameter("the update body must be a JSON object")
    fields = {}
    for attr, key in _UPDATE_INTS:
        value = body.get(key) or 0
        if not isinstance(value, int) or isinstance(value, bool):
            raise errors.InvalidParameter(f"invalid {key}: {value!r}")
        fields[attr] = value
    for attr, key in (("cpuset_cpus", "CpusetCpus"), ("cpuset_mems", "CpusetMems")):
        fields[attr] = str(body.get(key) or "")
    pids = body.get("PidsLimit")
    if pids is not None and (not isinstance(pids, int) or isinstance(pids, bool)):
        raise errors.InvalidParameter(f"invalid PidsLimit: {pids!r}")
    kernel_memory = fields.pop("kernel_memory")
    policy = container_json.restart_policy(body["RestartPolicy"]) if body.get("RestartPolicy") else None
    warnings = await req.daemon.containers.update(req.params["id"], Resources(pids_limit=pids, **fields), policy,
                                                  kernel_memory)
    return json_response({"Warnings": warnings})


@router.get("/containers/{id}/changes")
async def changes(req: Request):
    found = await req.daemon.containers.changes(req.params["id"])
    # dockerd answers null, not [], when nothing changed
    return json_response([{"Path": c.path, "Kind": int(c.kind)} for c in found] or None)


# --- io --------------------------------------------------------------------------------------
@router.get("/containers/{id}/logs")
async def logs(req: Request):
    manager = req.daemon.containers
    c = manager.get(req.params["id"])
    q = req.query
    stdout, stderr = q.bool("stdout"), q.bool("stderr")
    if not (stdout or stderr):
        raise errors.InvalidParameter("Bad parameters: you must choose at least one stream")
    if c.host_config.log_config.type == "none":
        raise errors.InvalidParameter(
            'configured logging driver does not support reading'
        )
    tail = q.get("tail")
    tail_n = None if tail in (None, "", "all") else _tail(tail)
    since = parse_since(q.get("since")) if q.get("since") not in (None, "", "0") else None
    until = parse_since(q.get("until")) if q.get("until") not in (None, "", "0") else None
    timestamps, details = q.bool("timestamps"), q.bool("details")
    tty = c.config.tty
    await manager.catch_up_log(c)
    driver, live = manager.log_reader(c)
    follow = q.bool("follow") and live

    async def body():
        async for record in driver.read(follow=follow, since_ns=since, until_ns=until, tail=tail_n,
                                        stdout=stdout, stderr=stderr):
            line = log_line(record, timestamps, details)
            yield line if tty else frame(1 if record.stream == "stdout" else 2, line)

    content_type = RAW_STREAM if tty else MULTIPLEXED
    return StreamingResponse(body(), content_type)


def log_line(record, timestamps: bool, details: bool = False) -> bytes:
    """The bytes `docker logs` shows for one LogRecord (before framing): with details, its
    attributes as dockerd prints them (k=v query-escaped, sorted, comma-separated) and a space,
    after the timestamp."""
    data = record.data
    if details:
        data = ",".join(f"{quote_plus(k)}={quote_plus(v)}" for k, v in record.attrs).encode() + b" " + data
    if timestamps:
        return format_rfc3339nano(record.time_ns, fixed=True).encode() + b" " + data
    return data


def _tail(value: str) -> int | None:
    """The last n lines; None (all) for "all", a negative number or one that does not parse,
    as dockerd takes them."""
    try:
        n = int(value)
    except ValueError:
        return None
    return n if n >= 0 else None


@router.hijack("POST", "/containers/{id}/attach")
async def attach(req: Request, stream: HijackedStream):
    manager = req.daemon.containers
    c = manager.get(req.params["id"])
    q = req.query
    # A stopped container may be attached to: the stream starts with its next run
    # (`docker start -a`); the docker CLI's own `attach` refuses stopped ones client-side.
    if c.state.status is Status.PAUSED:
        raise errors.Conflict("You cannot attach to a paused container, unpause it first")
    want_stdin, want_stdout, want_stderr = q.bool("stdin"), q.bool("stdout"), q.bool("stderr")
    tty = c.config.tty
    detacher = Detacher(parse_detach_keys(q.get("detachKeys")))
    subscription = manager.subscribe_output(c) if q.bool("stream") else None
    await stream.upgrade(RAW_STREAM if tty else MULTIPLEXED)
    manager.publish(c, "attach")

    async def send(stream_id: int, data: bytes) -> None:
        if (stream_id == 1 and not want_stdout) or (stream_id == 2 and not want_stderr):
            return
        if tty:
            await stream.send_all(data)
        else:
            await stream.send_frame(stream_id, data)

    try:
        if q.bool("logs"):
            driver, _ = manager.log_reader(c)
            async for record in driver.read(follow=False):
                await send(1 if record.stream == "stdout" else 2, record.data)
        if subscription is None:
            return
        async with trio.open_nursery() as nursery:
            if want_stdin and c.config.open_stdin:
                # dockerd watches for the detach keys on a TTY's stdin only.
                chunks = detacher.filter(stream.chunks()) if tty else stream.chunks()

                async def stdin_task():
                    await manager.write_stdin(c, chunks, c.config.stdin_once)

                async def detach_task():
                    await detacher.detached.wait()
                    manager.publish(c, "detach")
                    nursery.cancel_scope.cancel()

                nursery.start_soon(stdin_task)
                nursery.start_soon(detach_task)
            async for stream_id, data in subscription:
                await send(stream_id, data)
            nursery.cancel_scope.cancel()
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    except BaseExceptionGroup as group:  # the client went away while the nursery ran
        _, rest = group.split((trio.BrokenResourceError, trio.ClosedResourceError))
        if rest is not None:
            raise rest
    finally:
        if subscription is not None:
            subscription.close()
        with trio.CancelScope(shield=True):
            if not detacher.detached.is_set():
                await _lingering_close(stream)
            await stream.aclose()


async def _lingering_close(stream: HijackedStream, timeout: float = 2.0) -> None:
    """End our side first and let the client finish: closing a socket that still holds unread
    client bytes (stdin it kept sending) resets the connection, and over TCP a reset can
    discard output the client has not read yet. The client closes once it has read our EOF."""
    if not await stream.send_eof():
        return
    with trio.move_on_after(timeout):
        while await stream.receive_some():
            pass


@router.get("/containers/{id}/top")
async def top(req: Request):
    table = await req.daemon.containers.top(req.params["id"], req.query.get("ps_args") or "-ef")
    return json_response({"Titles": list(table.titles), "Processes": [list(row) for row in table.processes]})


@router.get("/containers/{id}/stats")
async def stats(req: Request):
    manager = req.daemon.containers
    c = manager.get(req.params["id"])
    stream = req.query.bool("stream", True)
    one_shot = req.query.bool("one-shot")
    if stream and one_shot:
        raise errors.InvalidParameter("cannot have stream=true and one-shot=true")

    def with_pre(sample: dict, previous: dict | None) -> dict:
        sample["preread"] = previous["read"] if previous else "0001-01-01T00:00:00Z"
        sample["precpu_stats"] = previous["cpu_stats"] if previous else NO_CPU_STATS
        return sample

    if not stream:
        first = stats_shape(await manager.stats_sample(c))
        if one_shot or c.state.status is not Status.RUNNING:
            return json_response(with_pre(first, None))
        await trio.sleep(1)  # Docker's non-streaming answer carries a 1 s CPU delta
        return json_response(with_pre(stats_shape(await manager.stats_sample(c)), first))

    async def samples():
        previous = None
        while True:
            sample = stats_shape(await manager.stats_sample(c))
            yield with_pre(dict(sample), previous)
            previous = sample
            if c.state.status not in (Status.RUNNING, Status.PAUSED):
                return
            await trio.sleep(1)

    return json_stream(samples())


# --- archive (docker cp) ---------------------------------------------------------------------
def _archive_target(req: Request):
    c = req.daemon.containers.get(req.params["id"])
    path = req.query.get("path")
    if not path:
        raise errors.InvalidParameter("path is required")
    mounts = [(b.destination, b.source, b.read_only) for b in c.host_config.binds or () if not b.is_volume]
    mounts += [(p.destination, p.source, not p.rw) for p in volume_points(c, req.daemon) if p.source]
    # The per-container files bind-mounted over the image's, as the container sees them.
    mounts += [("/etc/hostname", c.hostname_path, False), ("/etc/hosts", c.hosts_path, False),
               ("/etc/resolv.conf", c.resolv_conf_path, False)]
    return c, path, mounts


def path_stat_header(stat) -> str:
    """X-Docker-Container-Path-Stat: base64 of Docker's ContainerPathStat JSON for an
    engine.containers.archive.PathStat."""
    shape = {"name": stat.name, "size": stat.size, "mode": stat.mode, "mtime": format_rfc3339nano(stat.mtime_ns),
             "linkTarget": stat.link_target}
    return base64.b64encode(json.dumps(shape, separators=(",", ":")).encode()).decode()


@router.head("/containers/{id}/archive")
async def archive_head(req: Request):
    from engine.containers import archive

    c, path, mounts = _archive_target(req)
    async with req.daemon.containers.rootfs_mounted(c) as rootfs:
        stat = await trio.to_thread.run_sync(archive.stat_path, rootfs, mounts, path, req.params["id"])
    return empty(200, headers={"X-Docker-Container-Path-Stat": path_stat_header(stat), "Content-Type": "application/json"})


@router.get("/containers/{id}/archive")
async def archive_get(req: Request):
    from engine.containers import archive

    c, path, mounts = _archive_target(req)
    mount = req.daemon.containers.rootfs_mounted(c)
    rootfs = await mount.__aenter__()
    try:
        stat, chunks = await archive.archive_get(rootfs, mounts, path, req.params["id"])
    except BaseException:
        await mount.__aexit__(None, None, None)
        raise

    async def body():
        try:
            async for chunk in chunks:
                yield chunk
        finally:
            await mount.__aexit__(None, None, None)

    return StreamingResponse(body(), "application/x-tar",
                             headers={"X-Docker-Container-Path-Stat": path_stat_header(stat)})


@router.put("/containers/{id}/archive")
async def archive_put(req: Request):
    from engine.containers import archive

    c, path, mounts = _archive_target(req)
    if c.host_config.readonly_rootfs:
        raise errors.Forbidden("container rootfs is marked read-only")
    async with req.daemon.containers.rootfs_mounted(c) as rootfs:
        await archive.archive_put(rootfs, mounts, path, req.stream(),
                                  no_overwrite_dir_non_dir=req.query.bool("noOverwriteDirNonDir"),
                                  container_id=req.params["id"])
    return empty(200)

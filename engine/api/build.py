"""POST /build (dockerd's classic builder protocol: a context tar in, a JSON-lines stream of
{"stream"}, {"aux"} and {"errorDetail"} out) and POST /build/prune. Errors found before the
build starts (bad options, an unreadable Dockerfile) are ordinary HTTP errors, as dockerd
answers them before its first output."""

from __future__ import annotations

import json

from engine import errors
from engine.api import _filters as filters_api
from engine.api._container_json import host_config
from engine.api._progress import ProgressResponse
from engine.api._request import Request
from engine.api._responses import json_response
from engine.api._router import Router
from engine.timefmt import parse_since

router = Router()


def _json_param(req: Request, name: str, default):
    raw = req.query.get(name)
    if not raw:
        return default
    try:
        return json.loads(raw)
    except ValueError:
        raise errors.InvalidParameter(f"invalid {name} parameter: {raw!r}") from None


def _extra_hosts(req: Request) -> list[str]:
    out: list[str] = []
    for raw in req.query.getall("extrahosts"):
        raw = raw.strip()
        if raw.startswith("["):
            try:
                out += [str(h) for h in json.loads(raw)]
                continue
            except ValueError:
                pass
        out += [h for h in raw.split(",") if h]
    return out


def _run_host_config(req: Request):
    """The HostConfig of the build's RUN containers from the classic builder's query: what
    `docker build` sends for --network, --add-host, --shm-size, -m, --memory-swap, -c,
    --cpu-period, --cpu-quota, --cpuset-cpus, --cpuset-mems, --cgroup-parent and --ulimit
    (checked as a container create checks them, at the first RUN)."""
    q = req.query
    ulimits = _json_param(req, "ulimits", None)
    if ulimits is not None and not isinstance(ulimits, list):
        raise errors.InvalidParameter("ulimits must be a JSON array")
    return host_config({
        "NetworkMode": q.get("networkmode") or None, "ExtraHosts": _extra_hosts(req) or None,
        "ShmSize": q.int("shmsize", 0) or None, "Memory": q.int("memory", 0), "MemorySwap": q.int("memswap", 0),
        "CpuShares": q.int("cpushares", 0), "CpuPeriod": q.int("cpuperiod", 0), "CpuQuota": q.int("cpuquota", 0),
        "CpusetCpus": q.get("cpusetcpus") or None, "CpusetMems": q.get("cpusetmems") or None,
        "CgroupParent": q.get("cgroupparent") or None, "Ulimits": ulimits,
    })


def build_options(req: Request):
    from engine.build import BuildOptions

    q = req.query
    buildargs = _json_param(req, "buildargs", {})
    labels = _json_param(req, "labels", {})
    cachefrom = _json_param(req, "cachefrom", [])
    if not isinstance(buildargs, dict) or not isinstance(labels, dict) or not isinstance(cachefrom, list):
        raise errors.InvalidParameter("buildargs and labels must be JSON objects, cachefrom a JSON array")
    return BuildOptions(
        dockerfile=q.get("dockerfile") or "Dockerfile",
        tags=[t for t in q.getall("t") if t],
        buildargs={str(k): (None if v is None else str(v)) for k, v in buildargs.items()},
        target=q.get("target") or None,
        labels={str(k): str(v) for k, v in labels.items()},
        nocache=q.bool("nocache"),
        pull=q.bool("pull"),
        rm=q.bool("rm", True) if q.get("rm") not in (None, "") else True,
        forcerm=q.bool("forcerm"),
        cachefrom=[str(c) for c in cachefrom],
        run_host_config=_run_host_config(req),
        quiet=q.bool("q"),
        platform=q.get("platform") or "",
    )


class BuildStream:
    """Docker's build stream ({"stream": text}, the image id as {"aux": {"ID"}}, an error as
    the last message) for engine.build's Output. Quiet (-q): only the image id, and the
    output kept back is shown if the build fails, as dockerd does."""

    def __init__(self, emit, quiet: bool = False):
        self.emit = emit
        self.quiet = quiet
        self.suppressed: list[str] = []

    async def stream(self, text: str) -> None:
        if not text:
            return
        if self.quiet:
            self.suppressed.append(text)
        else:
            await self.emit({"stream": text})

    async def built(self, image_id: str) -> None:
        await self.emit({"id": "moby.image.id", "aux": {"ID": image_id}})

    async def done(self, image_id: str) -> None:
        if self.quiet:
            await self.emit({"stream": image_id + "\n"})

    async def failed(self, message: str, code: int) -> None:
        if self.suppressed:
            await self.emit({"stream": "".join(self.suppressed)})
            self.suppressed = []
        await self.emit({"errorDetail": {"code": code, "message": message}, "error": message})


@router.post("/build")
async def build(req: Request):
    from engine.build import StepFailed

    options = build_options(req)
    builder = req.daemon.builder
    remote = req.query.get("remote")
    body = builder.remote_context(remote) if remote else req.stream()
    prepared = await builder.prepare(options, body)

    async def produce(emit):
        output = BuildStream(emit, options.quiet)
        try:
            await builder.run(prepared, output)
        except StepFailed as exc:
            await output.failed(exc.message, exc.code)

    return ProgressResponse(produce)


_PRUNE_FILTERS = {"until": filters_api.timestamp, "unused-for": filters_api.timestamp}


@router.post("/build/prune")
async def prune(req: Request):
    filters = req.query.filters(_PRUNE_FILTERS)
    until = filters.get("until") or filters.get("unused-for")  # dockerd: two names, one meaning
    keep = req.query.int("keep-storage", 0) or 0
    report = await req.daemon.builder.prune(all_=req.query.bool("all"), keep_storage=keep,
                                            until_ns=parse_since(until[0]) if until else None)
    return json_response({"CachesDeleted": list(report.deleted) or None, "SpaceReclaimed": report.space_reclaimed})

"""Container commands beyond the lifecycle: attach, diff, update, container prune; and the
`container <command>` names of every container command."""

from __future__ import annotations

import argparse
import sys

from ._app import Cli, CommandError, alias, arg, command
from ._containers import SIG_PROXY_FLAG, attached_start, detach_keys_option, for_each
from ._format import filters_param, human_size
from ._opts import OptError, parse_cpus, parse_restart, size_flag

for _name in ("attach", "create", "diff", "exec", "kill", "logs", "pause", "port", "rename", "restart", "rm",
              "run", "start", "stats", "stop", "top", "unpause", "update", "wait"):
    alias(f"container {_name}", _name)
alias("container remove", "rm")


@command("attach", "Attach local standard input, output, and error streams to a running container",
         arg("--detach-keys", default=None, help="Override the key sequence for detaching a container"),
         arg("--no-stdin", action="store_true", help="Do not attach STDIN"),
         arg("--sig-proxy", **SIG_PROXY_FLAG),
         arg("container"))
def attach(cli: Cli, a: argparse.Namespace) -> int:
    """Until the container stops (its exit status is ours) or the user detaches (0)."""
    keys = detach_keys_option(cli, a.detach_keys, "attach")
    info = cli.client.get(f"/containers/{a.container}/json")
    state = info.get("State") or {}
    if not state.get("Running"):
        raise CommandError("You cannot attach to a stopped container, start it first")
    if state.get("Paused"):
        raise CommandError("You cannot attach to a paused container, unpause it first")
    cfg = info.get("Config") or {}
    return attached_start(cli, info["Id"], tty=bool(cfg.get("Tty")),
                          interactive=bool(cfg.get("OpenStdin")) and not a.no_stdin, auto_remove=False,
                          run=False, detach_keys=keys, start=False, sig_proxy=a.sig_proxy == "true")


_CHANGE_KINDS = {0: "C", 1: "A", 2: "D"}


@command("diff", "Inspect changes to files or directories on a container's filesystem", arg("container"))
def diff(cli: Cli, a: argparse.Namespace) -> int:
    for change in cli.client.get(f"/containers/{a.container}/changes") or []:
        cli.print(f"{_CHANGE_KINDS.get(change.get('Kind'), '?')} {change.get('Path', '')}")
    return 0


@command("update", "Update configuration of one or more containers",
         arg("--blkio-weight", type=int, default=None, help="Block IO (relative weight), between 10 and 1000"),
         arg("--cpu-period", type=int, default=None, help="Limit CPU CFS (Completely Fair Scheduler) period"),
         arg("--cpu-quota", type=int, default=None, help="Limit CPU CFS (Completely Fair Scheduler) quota"),
         arg("-c", "--cpu-shares", type=int, default=None, help="CPU shares (relative weight)"),
         arg("--cpus", default=None, help="Number of CPUs"),
         arg("--cpuset-cpus", default=None, help="CPUs in which to allow execution (0-3, 0,1)"),
         arg("--cpuset-mems", default=None, help="MEMs in which to allow execution (0-3, 0,1)"),
         arg("--kernel-memory", default=None, help="Kernel memory limit (deprecated)"),
         arg("-m", "--memory", default=None, help="Memory limit"),
         arg("--memory-reservation", default=None, help="Memory soft limit"),
         arg("--memory-swap", default=None, help="Swap limit equal to memory plus swap: -1 to enable unlimited swap"),
         arg("--pids-limit", type=int, default=None, help="Tune container pids limit (set -1 for unlimited)"),
         arg("--restart", default=None, help="Restart policy to apply when a container exits"),
         arg("containers", nargs="+"))
def update(cli: Cli, a: argparse.Namespace) -> int:
    try:
        body = {key: value for key, value in (
            ("BlkioWeight", a.blkio_weight), ("CpuPeriod", a.cpu_period), ("CpuQuota", a.cpu_quota),
            ("CpuShares", a.cpu_shares), ("NanoCpus", parse_cpus(a.cpus) if a.cpus is not None else None),
            ("CpusetCpus", a.cpuset_cpus), ("CpusetMems", a.cpuset_mems),
            ("KernelMemory", size_flag("--kernel-memory", a.kernel_memory) if a.kernel_memory else None),
            ("Memory", size_flag("--memory", a.memory) if a.memory else None),
            ("MemoryReservation", size_flag("--memory-reservation", a.memory_reservation)
             if a.memory_reservation else None),
            ("MemorySwap", size_flag("--memory-swap", a.memory_swap, allow_minus_one=True) if a.memory_swap else None),
            ("PidsLimit", a.pids_limit),
            ("RestartPolicy", parse_restart(a.restart) if a.restart is not None else None),
        ) if value is not None}
    except OptError as exc:
        raise CommandError(f"pyengine update: {exc}", 125) from None
    if not body:
        raise CommandError("you must provide one or more flags when using this command", 125)

    def one(name: str) -> None:
        result = cli.client.post(f"/containers/{name}/update", body) or {}
        for warning in result.get("Warnings") or []:
            cli.warn(warning)

    status = for_each(cli, a.containers, one)
    if status:
        cli.warn("Error: failed to update containers: " + ", ".join(a.containers))
    return status


@command("container prune", "Remove all stopped containers",
         arg("-f", "--force", action="store_true", help="Do not prompt for confirmation"),
         arg("--filter", action="append", default=[], help='Provide filter values (e.g. "until=<timestamp>")'))
def container_prune(cli: Cli, a: argparse.Namespace) -> int:
    try:
        filters = filters_param(a.filter)
    except ValueError as exc:
        raise CommandError(str(exc), 125) from None
    if not a.force and sys.stdin.isatty():
        answer = input("WARNING! This will remove all stopped containers.\nAre you sure you want to continue? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            return 0
    result = cli.client.post("/containers/prune", params={"filters": filters}) or {}
    cli.print_deleted("Containers", result.get("ContainersDeleted") or [])
    cli.print(f"Total reclaimed space: {human_size(result.get('SpaceReclaimed') or 0)}")
    return 0

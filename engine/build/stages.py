"""Nodes → build stages, validated before anything runs (each error names its line), and
the choice of which stages a build needs (the target and what it copies from)."""

from __future__ import annotations

import re

import attrs

from engine.errors import InvalidParameter

from .parser import Dockerfile, Node, ParseError

_STAGE_NAME = re.compile(r"^[a-z][a-z0-9-_.]*$")

# keyword → allowed flags
_FLAGS = {
    "from": {"platform"},
    "copy": {"from", "chown", "chmod", "link"},
    "add": {"chown", "chmod", "link", "checksum", "keep-git-dir"},
    "healthcheck": {"interval", "timeout", "start-period", "start-interval", "retries"},
}
_BUILDKIT_ONLY = {("run", "mount"), ("run", "network"), ("run", "security")}


@attrs.define
class Stage:
    index: int
    name: str | None
    base: str                 # FROM's image (not yet expanded)
    platform: str | None
    line: int
    from_node: Node
    nodes: list[Node] = attrs.Factory(list)


@attrs.define
class Plan:
    meta_args: list[Node]     # ARGs before the first FROM
    stages: list[Stage]
    escape: str
    warnings: tuple[str, ...] = ()

    def stage_by_ref(self, ref: str) -> Stage | None:
        """`--from` / FROM reference to an earlier stage: its name or index."""
        low = ref.lower()
        for stage in self.stages:
            if stage.name == low:
                return stage
        if ref.isdigit() and int(ref) < len(self.stages):
            return self.stages[int(ref)]
        return None

    def target_stage(self, target: str | None) -> Stage:
        if not target:
            return self.stages[-1]
        for stage in self.stages:
            if stage.name == target.lower():
                return stage
        raise InvalidParameter(f"failed to reach build target {target} in Dockerfile")

    def needed(self, target: Stage) -> list[Stage]:
        """The stages the target depends on (FROM <stage>, COPY --from=<stage>), in order:
        unused stages are not built."""
        need: set[int] = set()

        def visit(stage: Stage) -> None:
            if stage.index in need:
                return
            need.add(stage.index)
            earlier = Plan(self.meta_args, self.stages[:stage.index], self.escape)
            dep = earlier.stage_by_ref(stage.base)
            if dep is not None:
                visit(dep)
            for node in stage.nodes:
                for flag in node.flags:
                    if node.keyword == "copy" and flag.startswith("--from="):
                        ref = flag[len("--from="):]
                        dep = earlier.stage_by_ref(ref)
                        if dep is not None:
                            visit(dep)

        visit(target)
        return [s for s in self.stages if s.index in need]


def plan(dockerfile: Dockerfile) -> Plan:
    meta_args: list[Node] = []
    stages: list[Stage] = []
    if not dockerfile.nodes:
        raise InvalidParameter("the Dockerfile (Dockerfile) cannot be empty")
    for node in dockerfile.nodes:
        check(node)
        if node.keyword == "from":
            name = None
            if len(node.args) == 3:
                name = node.args[2].lower()
                if not _STAGE_NAME.match(name):
                    raise ParseError(node.line, f'invalid name for build stage: "{node.args[2]}", '
                                                "name can't start with a number or contain symbols")
                if any(s.name == name for s in stages):
                    raise ParseError(node.line, "a stage name already used")  # dockerd's words
            platform = None
            for flag in node.flags:
                if flag.startswith("--platform="):
                    platform = flag.split("=", 1)[1]
            stages.append(Stage(index=len(stages), name=name, base=node.args[0], platform=platform,
                                line=node.line, from_node=node))
        elif not stages:
            if node.keyword != "arg":
                raise InvalidParameter("no build stage in current context")  # dockerd names no line
            meta_args.append(node)
        else:
            stages[-1].nodes.append(node)
    return Plan(meta_args=meta_args, stages=stages, escape=dockerfile.escape, warnings=dockerfile.warnings)


def check(node: Node) -> None:
    """Arity and flags of one instruction, with Docker's messages."""
    kw = node.keyword
    name = kw.upper()
    allowed = _FLAGS.get(kw, set())
    for flag in node.flags:
        fname = flag[2:].split("=", 1)[0]
        if (kw, fname) in _BUILDKIT_ONLY:
            raise ParseError(node.line, f"the --{fname} option requires BuildKit. Refer to "
                                        "https://docs.docker.com/go/buildkit/ to learn how to "
                                        "build images with BuildKit enabled")
        if fname not in allowed:
            raise ParseError(node.line, f"Unknown flag: {fname}")
    n = len(node.args)
    if kw == "from":
        if n not in (1, 3) or (n == 3 and node.args[1].lower() != "as"):
            raise ParseError(node.line, "FROM requires either one or three arguments")
    elif kw in ("copy", "add"):
        if n < 2:
            what = "none were" if n == 0 else "only one was"
            raise ParseError(node.line, f"{name} requires at least two arguments, but {what} provided. "
                                        "Destination could not be determined")
    elif kw in ("workdir", "user", "stopsignal", "maintainer"):
        if n != 1:
            raise ParseError(node.line, f"{name} requires exactly one argument")
    elif kw in ("run", "expose", "volume", "env", "label", "arg"):
        if n == 0:
            raise ParseError(node.line, f"{name} requires at least one argument")
        if kw == "volume" and any(not a.strip() for a in node.args):
            raise ParseError(node.line, "VOLUME specified can not be an empty string")
    elif kw == "shell":
        if not node.json_form:
            raise ParseError(node.line, "SHELL requires the arguments to be in JSON form")
        if n == 0:
            raise ParseError(node.line, "SHELL requires at least one argument")
    elif kw == "onbuild" and node.sub is not None:
        check(node.sub)

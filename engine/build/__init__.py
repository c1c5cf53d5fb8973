"""The image builder: Dockerfiles (parser, substitution, stages), build contexts (safe
extraction, checksums; .dockerignore from engine.buildcontext), the layer cache and the
executor that runs each step as dockerd's classic builder does."""

from .builder import Builder, BuildOptions, CachePruneReport, Output, Prepared
from .cache import BuildCache, CacheUsage, cache_key
from .executor import StepFailed
from .parser import Dockerfile, Node, ParseError, parse, parse_line
from .shell import ShellLex
from .stages import Plan, Stage, plan

__all__ = [
    "BuildCache", "BuildOptions", "Builder", "CachePruneReport", "CacheUsage", "Dockerfile", "Node", "Output",
    "ParseError",
    "Plan", "Prepared", "ShellLex", "Stage", "StepFailed", "cache_key", "parse", "parse_line", "plan",
]

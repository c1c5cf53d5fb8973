"""`host`: the container shares the host's network namespace (NetworkMode host)."""

from engine.networks._builtin import SingletonDriver


class HostDriver(SingletonDriver):
    name = "host"
    network_name = "host"

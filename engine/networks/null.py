"""`null` (network `none`): the container gets a network namespace with loopback only."""

from engine.networks._builtin import SingletonDriver


class NullDriver(SingletonDriver):
    name = "null"
    network_name = "none"

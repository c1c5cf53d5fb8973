"""`host`: the container shares the host's network namespace (NetworkMode host)."""

from engine import errors


class HostDriver:
    name = "host"
    attaches = False

    def __init__(self, context=None) -> None:
        self.context = context

    async def create_network(self, network) -> None:
        if not network.builtin:
            raise errors.Forbidden("only one instance of \"host\" network is allowed")

    async def delete_network(self, network) -> None:
        pass

    async def restore_network(self, network) -> None:
        pass

    async def release_network(self, network) -> None:
        pass

    async def join(self, network, endpoint, pid) -> None:
        raise errors.Forbidden("container cannot be disconnected from host network or connected to host network")

    async def leave(self, network, endpoint) -> None:
        pass

"""`null` (network `none`): the container gets a network namespace with loopback only."""

from engine import errors


class NullDriver:
    name = "null"
    attaches = False

    def __init__(self, context=None) -> None:
        self.context = context

    async def create_network(self, network) -> None:
        if not network.builtin:
            raise errors.Forbidden("only one instance of \"none\" network is allowed")

    async def delete_network(self, network) -> None:
        pass

    async def restore_network(self, network) -> None:
        pass

    async def release_network(self, network) -> None:
        pass

    async def join(self, network, endpoint, pid) -> None:
        raise errors.Forbidden("container cannot be disconnected from none network or connected to none network")

    async def leave(self, network, endpoint) -> None:
        pass

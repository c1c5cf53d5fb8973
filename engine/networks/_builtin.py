"""What the `host` and `null` drivers share: one built-in network each, no endpoints."""

from engine import errors


class SingletonDriver:
    """A driver whose only network is the daemon's built-in one (`host`, `none`), which no
    container joins or leaves at run time: the mode is decided when the container is created."""

    name = ""
    network_name = ""
    attaches = False

    def __init__(self, context=None) -> None:
        self.context = context

    async def create_network(self, network) -> None:
        if not network.builtin:
            raise errors.Forbidden(f'only one instance of "{self.name}" network is allowed')  # the driver's name

    async def delete_network(self, network) -> None:
        pass

    async def restore_network(self, network) -> None:
        pass

    async def release_network(self, network) -> None:
        pass

    async def join(self, network, endpoint, pid) -> None:
        raise errors.Forbidden(
            f"container cannot be disconnected from {self.network_name} network or connected to "
            f"{self.network_name} network"
        )

    async def leave(self, network, endpoint) -> None:
        pass

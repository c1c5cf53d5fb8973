"""IP address management per network: one file per allocated address, created with O_EXCL
under the data root, so two allocations can never get the same address."""

from __future__ import annotations

import ipaddress
import os
import shutil

from engine import errors


class Ipam:
    def __init__(self, directory: str, subnet: str, gateway: str, ip_range: str | None = None,
                 reserved=()) -> None:
        self.directory = directory
        self.subnet = ipaddress.ip_network(subnet, strict=False)
        self.gateway = ipaddress.ip_address(gateway) if gateway else None
        self.range = ipaddress.ip_network(ip_range, strict=False) if ip_range else self.subnet
        #: auxiliary addresses: never handed out, not even when asked for
        self.reserved = {ipaddress.ip_address(a) for a in reserved}
        os.makedirs(directory, exist_ok=True)

    def _path(self, address) -> str:
        return os.path.join(self.directory, str(address))

    def _claim(self, address, owner: str) -> bool:
        try:
            fd = os.open(self._path(address), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return False
        try:
            os.write(fd, owner.encode())
        finally:
            os.close(fd)
        return True

    def allocate(self, owner: str, preferred: str | None = None) -> str:
        """A free address (or `preferred`), recorded for `owner`. Blocking file IO."""
        if preferred:
            address = ipaddress.ip_address(preferred)
            if address not in self.subnet:
                raise errors.InvalidParameter(f"Address {preferred} does not belong to subnet {self.subnet}")
            if address == self.gateway or address in self.reserved or not self._claim(address, owner):
                raise errors.Conflict(f"Address already in use: {preferred}")
            return str(address)
        for address in self.range:  # a range has no network/broadcast of its own: only the subnet's are skipped
            if address == self.gateway or address in self.reserved or address not in self.subnet:
                continue
            if address in (self.subnet.network_address, self.subnet.broadcast_address):
                continue
            if self._claim(address, owner):
                return str(address)
        raise errors.Unavailable(f"no available IPv{self.subnet.version} addresses on this network's address pools: {self.subnet}")

    def release(self, address: str) -> None:
        try:
            os.unlink(self._path(address))
        except FileNotFoundError:
            pass

    def allocations(self) -> dict[str, str]:
        out = {}
        for name in os.listdir(self.directory):
            try:
                with open(self._path(name)) as f:
                    out[name] = f.read()
            except OSError:
                pass
        return out

    def release_all(self) -> None:
        for name in os.listdir(self.directory):
            self.release(name)

    def destroy(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def mac_for(address: str) -> str:
    """Docker's scheme: 02:42 followed by the IPv4 address."""
    octets = [int(o) for o in address.split(".")]
    return "02:42:" + ":".join(f"{o:02x}" for o in octets)

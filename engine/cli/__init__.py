"""The `pyengine` command line client: a Docker Engine API client (never imports daemon
internals). `main(argv)` returns the exit status."""

from ._app import main
from ._client import Client, ClientError, ConnectError

__all__ = ["main", "Client", "ClientError", "ConnectError"]

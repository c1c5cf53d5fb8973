"""The `pyengine` command line client: a Docker Engine API client (never imports daemon
internals). `main(argv)` returns the exit status."""

from ._app import main
from ._client import Client, ClientError, ConnectError
from ._format import Demuxer, iter_json_stream

__all__ = ["main", "Client", "ClientError", "ConnectError", "Demuxer", "iter_json_stream"]

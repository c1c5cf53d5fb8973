"""`docker search` against a registry index on loopback (a small v1 search API served by the
test): the term names the index, the daemon asks it over plain http with the query and limit,
and the filters (stars, is-official, is-automated) select among the answers as dockerd's do."""

from __future__ import annotations

import contextlib
import http.server
import json
import shutil
import subprocess
import threading
import urllib.parse

import pytest

from tests.conftest import needs_root

DOCKER = shutil.which("docker")
pytestmark = [needs_root, pytest.mark.acceptance]

REPOSITORIES = [
    {"name": "busybox", "description": "the official one", "star_count": 10, "is_official": True,
     "is_automated": False},
    {"name": "team/busybox-plus", "description": "with extras", "star_count": 2, "is_official": False,
     "is_automated": True},
]


@pytest.fixture(scope="module")
def index():
    """(host:port, the queries it was asked) of a v1 index serving REPOSITORIES."""
    asked: list[dict] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            url = urllib.parse.urlsplit(self.path)
            if url.path != "/v1/search":
                self.send_error(404)
                return
            query = dict(urllib.parse.parse_qsl(url.query))
            asked.append(query)
            found = [r for r in REPOSITORIES if query.get("q", "") in r["name"]][: int(query.get("n", "25"))]
            body = json.dumps({"query": query.get("q"), "num_results": len(found), "results": found}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", asked
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_docker_py_search_asks_the_index_the_term_names(dclient, index):
    host, asked = index
    assert dclient.search(f"{host}/busybox") == [
        {"star_count": r["star_count"], "is_official": r["is_official"], "name": r["name"],
         "is_automated": r["is_automated"], "description": r["description"]} for r in REPOSITORIES]
    assert asked[-1] == {"q": "busybox", "n": "25"}
    assert [r["name"] for r in dclient.search(f"{host}/busybox", limit=1)] == ["busybox"]
    assert asked[-1] == {"q": "busybox", "n": "1"}


@pytest.mark.parametrize("filters, names", [
    ({"stars": "3"}, ["busybox"]),
    ({"is-official": "false"}, ["team/busybox-plus"]),
    ({"is-automated": "true", "stars": "1"}, ["team/busybox-plus"]),
])
def test_filters_select_among_the_answers(daemon, index, filters, names):
    host, _ = index
    response = daemon.api("GET", "/v1.41/images/search",
                          params={"term": f"{host}/busybox",
                                  "filters": json.dumps({k: [v] for k, v in filters.items()})})
    assert [r["name"] for r in response.json()] == names


@pytest.mark.parametrize("params, message", [
    ({"filters": json.dumps({"stars": ["many"]})}, "Invalid filter 'stars=many'"),
    ({"filters": json.dumps({"is-official": ["maybe"]})}, "Invalid filter 'is-official=[maybe]'"),
    ({"filters": json.dumps({"bogus": ["1"]})}, "Invalid filter 'bogus'"),
    ({"limit": "101"}, "Limit 101 is outside the range of [1, 100]"),
])
def test_bad_requests_are_refused(daemon, index, params, message):
    host, _ = index
    response = daemon.api("GET", "/v1.41/images/search", params={"term": f"{host}/busybox", **params})
    assert (response.status_code, response.json()) == (400, {"message": message})


@pytest.mark.skipif(DOCKER is None, reason="docker CLI not installed")
def test_docker_cli_search(daemon, index):
    host, _ = index

    def docker(*args):
        return subprocess.run([DOCKER, *args], env=daemon.env(), capture_output=True, text=True, timeout=60)

    found = docker("search", "--format", "{{.Name}} {{.StarCount}} {{.IsOfficial}}", "--filter", "stars=1",
                   f"{host}/busy")
    assert (found.returncode, found.stdout.splitlines()) == (0, ["busybox 10 [OK]", "team/busybox-plus 2 "])
    with contextlib.closing(__import__("socket").socket()) as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    refused = docker("search", f"127.0.0.1:{closed}/busybox")
    assert refused.returncode == 1
    assert refused.stderr.startswith(f'Error response from daemon: Get "http://127.0.0.1:{closed}/v1/search')


def test_pyengine_cli_search(daemon, index):
    import sys

    host, asked = index
    found = subprocess.run([sys.executable, "-m", "engine.cli", "-H", daemon.host, "search", "--limit", "5",
                            "--filter", "stars=1", f"{host}/busy"], capture_output=True, text=True, timeout=60)
    assert found.returncode == 0, found.stderr
    assert [line.split() for line in found.stdout.splitlines()] == [
        ["NAME", "DESCRIPTION", "STARS", "OFFICIAL"], ["busybox", "the", "official", "one", "10", "[OK]"],
        ["team/busybox-plus", "with", "extras", "2"]]
    assert asked[-1] == {"q": "busy", "n": "5"}

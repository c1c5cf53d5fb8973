"""`pyengine compose` against a private pyengined with busybox services: service-name DNS,
depends_on conditions, reconciliation (up twice, a changed service alone, scale up/down),
override files, a named volume surviving `down`, refusal of bad files before anything is
created, and docker-compose 1.29 seeing the same project."""

from __future__ import annotations

import datetime
import json
import queue
import shutil
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from tests.conftest import needs_root

pytestmark = [needs_root, pytest.mark.acceptance]

# Exits at once on SIGTERM (a shell as PID 1 would otherwise ignore it until the timeout).
IDLE = "trap 'exit 0' TERM; sleep 1000 & wait"

STORY = f"""\
services:
  seed:
    image: busybox
    command: ["sh", "-c", "sleep 0.5; echo seeded > /www/index.html"]
    volumes: [www:/www]
  web:
    image: busybox
    command: ["httpd", "-f", "-p", "80", "-h", "/www"]
    volumes: [www:/www]
  client:
    image: busybox
    environment: {{MODE: "${{MODE:-plain}}"}}
    command: ["sh", "-c", "test -f /www/index.html || exit 3; until wget -qO- http://web/; do sleep 0.1; done; {IDLE}"]
    volumes: ["www:/www:ro", "/cache"]
    depends_on:
      seed: {{condition: service_completed_successfully}}
      web: {{condition: service_started}}
volumes:
  www: {{}}
"""


class Compose:
    def __init__(self, daemon, directory, project):
        self.daemon = daemon
        self.dir = directory
        self.project = project

    def __call__(self, *args, check=True, env=None, timeout=120):
        cmd = [sys.executable, "-m", "engine.cli", "-H", self.daemon.host, "compose",
               "-p", self.project, *args]
        result = subprocess.run(cmd, cwd=self.dir, capture_output=True, timeout=timeout,
                                env={**self.daemon.env(), **(env or {})})
        if check:
            assert result.returncode == 0, (args, result.stdout, result.stderr)
        return result

    def ids(self) -> dict[str, str]:
        rows = json.loads(self("ps", "-a", "--format", "json").stdout)
        return {r["Name"]: r["ID"] for r in rows}

    def wait_log(self, service: str, text: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while True:
            out = self("logs", "--no-color", service).stdout.decode()
            if text in out or time.monotonic() > deadline:
                return out
            time.sleep(0.2)


@pytest.fixture
def compose(daemon, tmp_path, request):
    project = "pc" + request.node.name.replace("_", "")[4:16].lower()
    c = Compose(daemon, tmp_path, project)
    yield c
    down = c("down", "-v", "-t", "1", "--remove-orphans", check=False)
    leftovers = [n["Name"] for n in daemon.api("GET", "/networks").json()
                 if n["Name"].startswith(project)]
    assert not leftovers, down.stderr.decode()


def test_project_story(compose, daemon, tmp_path):
    (tmp_path / "compose.yaml").write_text(STORY)
    compose("up", "-d")
    # seed completed before client started (client exits 3 otherwise), web found by name
    assert "seeded" in compose.wait_log("client", "seeded")
    first = compose.ids()
    assert set(first) == {f"{compose.project}-{s}-1" for s in ("seed", "web", "client")}

    # up twice: nothing recreated
    compose("up", "-d")
    assert compose.ids() == first

    # docker-compose 1.29 sees the same project
    if shutil.which("docker-compose"):
        ps = subprocess.run(["docker-compose", "-p", compose.project, "ps"], cwd=tmp_path,
                            env=daemon.env(), capture_output=True, timeout=120)
        assert ps.returncode == 0, ps.stderr
        assert f"{compose.project}-web-1" in ps.stdout.decode()
        assert f"{compose.project}-client-1" in ps.stdout.decode()

    compose("exec", "-T", "client", "touch", "/cache/kept")
    # an override file changing one service recreates that service alone (keeping its
    # anonymous volume)
    (tmp_path / "compose.override.yaml").write_text(
        "services:\n  client:\n    environment: {EXTRA: '1'}\n")
    compose("up", "-d")
    after = compose.ids()
    web, client = f"{compose.project}-web-1", f"{compose.project}-client-1"
    assert after[web] == first[web] and after[client] != first[client]
    exec_env = compose("exec", "-T", "client", "sh", "-c", "echo $MODE-$EXTRA").stdout
    assert exec_env.strip() == b"plain-1"
    compose("exec", "-T", "client", "test", "-f", "/cache/kept")

    # scale up then down: numbered replicas
    compose("up", "-d", "--scale", "web=3")
    assert {n for n in compose.ids() if "-web-" in n} == {
        f"{compose.project}-web-{i}" for i in (1, 2, 3)}
    compose("up", "-d", "--scale", "web=1")
    assert {n for n in compose.ids() if "-web-" in n} == {web}

    # down without -v keeps the named volume and its content
    compose("down", "-t", "1")
    assert compose.ids() == {}
    out = compose("run", "--rm", "-T", "--no-deps", "web", "cat", "/www/index.html").stdout
    assert out.strip() == b"seeded"
    compose("down", "-v", "-t", "1")
    volumes = daemon.api("GET", "/volumes").json()["Volumes"] or []
    assert not [v for v in volumes if v["Name"].startswith(compose.project)]


def test_bad_files_are_refused_before_anything_is_created(compose, daemon, tmp_path):
    (tmp_path / "compose.yaml").write_text(textwrap.dedent("""\
        services:
          web:
            image: busybox
            ports: [{target: eighty}]
        networks:
          extra: {}
        """))
    result = compose("up", "-d", check=False)
    assert result.returncode != 0
    assert b"services.web.ports[0].target" in result.stderr
    (tmp_path / "compose.yaml").write_text(textwrap.dedent("""\
        services:
          web:
            image: busybox
            environment: {TOKEN: "${TOKEN:?set TOKEN first}"}
        """))
    result = compose("up", "-d", check=False)
    assert result.returncode != 0
    assert b"services.web.environment.TOKEN" in result.stderr
    assert b"set TOKEN first" in result.stderr
    names = [n["Name"] for n in daemon.api("GET", "/networks").json()]
    assert not [n for n in names if n.startswith(compose.project)]
    containers = daemon.api("GET", "/containers/json", params={"all": 1}).json()
    assert not [c for c in containers if c["Names"][0].startswith(f"/{compose.project}")]


def _when(ts: str) -> datetime.datetime:
    """An API timestamp (RFC 3339, nanoseconds) as a datetime (microseconds)."""
    head, _, frac = ts.rstrip("Z").partition(".")
    return datetime.datetime.fromisoformat(f"{head}.{(frac + '000000')[:6]}")


def test_health_gated_start_order(compose, daemon, tmp_path):
    (tmp_path / "compose.yaml").write_text(textwrap.dedent(f"""\
        services:
          db:
            image: busybox
            command: ["sh", "-c", "sleep 1; touch /tmp/ready; {IDLE}"]
            healthcheck:
              test: ["CMD", "test", "-f", "/tmp/ready"]
              interval: 200ms
              retries: 50
          app:
            image: busybox
            command: ["sh", "-c", "{IDLE}"]
            depends_on:
              db: {{condition: service_healthy}}
        """))
    compose("up", "-d", "--wait")
    db = daemon.api("GET", f"/containers/{compose.project}-db-1/json").json()
    app = daemon.api("GET", f"/containers/{compose.project}-app-1/json").json()
    assert db["State"]["Health"]["Status"] == "healthy"
    # app was started only once db was healthy (db needs ≥ 1 s to become so)
    healthy_at = min(_when(e["End"]) for e in db["State"]["Health"]["Log"]
                     if e["ExitCode"] == 0)
    assert _when(db["State"]["StartedAt"]) < healthy_at <= _when(app["State"]["StartedAt"])


def test_build_service_and_rmi_local(compose, daemon, tmp_path):
    (tmp_path / "Dockerfile").write_text(
        "FROM busybox\nARG GREETING=none\nCOPY . /ctx/\nRUN echo built-$GREETING > /built\n")
    # the context is packed with Docker's .dockerignore rules: `*` stays within one directory
    (tmp_path / "sub").mkdir()
    for name in ("top.log", "sub/kept.log"):
        (tmp_path / name).write_text(name)
    (tmp_path / ".dockerignore").write_text("*.log\ncompose.yaml\n")
    (tmp_path / "compose.yaml").write_text(textwrap.dedent(f"""\
        services:
          app:
            build:
              context: .
              args: {{GREETING: hello}}
            command: ["sh", "-c", "{IDLE}"]
        """))
    compose("up", "-d", "--build")
    assert compose("exec", "-T", "app", "cat", "/built").stdout == b"built-hello\n"
    listed = compose("exec", "-T", "app", "find", "/ctx", "-type", "f").stdout.decode().split()
    assert sorted(listed) == ["/ctx/.dockerignore", "/ctx/Dockerfile", "/ctx/sub/kept.log"]
    image = f"{compose.project}-app"
    assert daemon.api("GET", f"/images/{image}/json").status_code == 200
    compose("down", "--rmi", "local", "-t", "1")
    assert daemon.api("GET", f"/images/{image}/json").status_code == 404


def test_unhealthy_dependency_stops_up(compose, daemon, tmp_path):
    (tmp_path / "compose.yaml").write_text(textwrap.dedent(f"""\
        services:
          db:
            image: busybox
            command: ["sh", "-c", "{IDLE}"]
            healthcheck: {{test: ["CMD", "false"], interval: 100ms, retries: 2}}
          app:
            image: busybox
            command: ["sh", "-c", "{IDLE}"]
            depends_on:
              db: {{condition: service_healthy}}
        """))
    result = compose("up", "-d", check=False)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr.decode()
    assert result.stderr.decode().splitlines()[-1] == \
        f"dependency failed to start: container {compose.project}-db-1 is unhealthy"
    # as Docker Compose: created first, then started once its dependency is healthy: never
    rows = json.loads(compose("ps", "-a", "--format", "json").stdout)
    assert {r["Name"]: r["State"] for r in rows if r["Service"] == "app"} == \
        {f"{compose.project}-app-1": "created"}


def test_lifecycle_commands(compose, daemon, tmp_path):
    """stop/start/restart/kill/rm, top, logs with prefixes, events, config, profiles, an
    external network, push and pull through a loopback registry."""
    from tests.registry_util import start_registry

    net = f"{compose.project}-ext"
    assert daemon.api("POST", "/networks/create", json={"Name": net}).status_code == 201
    registry = start_registry()
    try:
        (tmp_path / "compose.yaml").write_text(textwrap.dedent(f"""\
            services:
              one:
                image: {registry.host}/pe/one:1
                command: ["sh", "-c", "echo one-says-hi; {IDLE}"]
                networks: [outside]
              two:
                image: busybox
                command: ["sh", "-c", "echo two-says-hi; {IDLE}"]
                depends_on: [one]
              extra:
                image: busybox
                profiles: [extra]
            networks:
              outside: {{external: true, name: {net}}}
            """))
        tagged = daemon.api("POST", "/images/busybox/tag",
                            params={"repo": f"{registry.host}/pe/one", "tag": "1"})
        assert tagged.status_code == 201
        compose("push", "one")
        assert daemon.api("DELETE", f"/images/{registry.host}/pe/one:1").status_code == 200
        compose("pull", "one")
        assert daemon.api("GET", f"/images/{registry.host}/pe/one:1/json").status_code == 200

        config = compose("config", "--format", "json").stdout
        assert set(json.loads(config)["services"]) == {"one", "two"}
        assert compose("--profile", "extra", "config", "--services").stdout.split() == \
            [b"one", b"two", b"extra"]

        compose("up", "-d")
        one = daemon.api("GET", f"/containers/{compose.project}-one-1/json").json()
        assert list(one["NetworkSettings"]["Networks"]) == [net]
        logs = compose.wait_log("two", "two-says-hi")
        logs = compose("logs", "--no-color").stdout.decode()
        assert "one-1 | one-says-hi" in logs and "two-1 | two-says-hi" in logs
        assert "sleep 1000" in compose("top", "two").stdout.decode()

        events = subprocess.Popen(
            [sys.executable, "-m", "engine.cli", "-H", daemon.host, "compose", "-p",
             compose.project, "events", "--json"], cwd=tmp_path, stdout=subprocess.PIPE)
        lines: queue.Queue = queue.Queue()
        threading.Thread(target=lambda: [lines.put(x) for x in events.stdout], daemon=True).start()
        try:
            # the subscription starts at some point after the process does: act until seen
            deadline = time.monotonic() + 60
            seen = None
            while seen is None and time.monotonic() < deadline:
                compose("restart", "two")
                try:
                    seen = json.loads(lines.get(timeout=1))
                except queue.Empty:
                    pass
            assert seen and seen["service"] == "two"
            assert seen["action"] in ("kill", "stop", "die", "start", "restart")
        finally:
            events.kill()
            events.wait()
        compose("stop", "two")
        states = {r["Service"]: r["State"]
                  for r in json.loads(compose("ps", "-a", "--format", "json").stdout)}
        assert states == {"one": "running", "two": "exited"}
        compose("start")
        compose("restart", "one")
        compose("kill", "two")
        compose("rm", "-f", "two")
        assert set(compose.ids()) == {f"{compose.project}-one-1"}
        compose("down", "-t", "1")
        # an external network is not the project's to remove
        assert daemon.api("GET", f"/networks/{net}").status_code == 200
    finally:
        registry.stop()
        compose("down", "-t", "1", check=False)
        daemon.api("DELETE", f"/networks/{net}")


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose not installed")
def test_project_made_by_docker_compose(compose, daemon, tmp_path):
    (tmp_path / "compose.yaml").write_text(
        'services:\n  web:\n    image: busybox\n    command: ["httpd", "-f", "-p", "80"]\n')
    made = subprocess.run(["docker-compose", "-p", compose.project, "up", "-d"], cwd=tmp_path,
                          env=daemon.env(), capture_output=True, timeout=120)
    assert made.returncode == 0, made.stderr
    assert list(compose.ids()) == [f"{compose.project}_web_1"]
    compose("down", "-t", "1")
    assert compose.ids() == {}
    assert daemon.api("GET", f"/networks/{compose.project}_default").status_code == 404


def test_service_keys_reach_the_container(compose, daemon, tmp_path):
    (tmp_path / "token.txt").write_text("s3cret")
    subnet = "10.213.137"
    (tmp_path / "compose.yaml").write_text(textwrap.dedent(f"""\
        services:
          app:
            image: busybox
            command: ["sh", "-c", "{IDLE}"]
            hostname: apphost
            working_dir: /tmp
            user: "1000:1000"
            tmpfs: [/scratch]
            secrets: [token]
            stop_signal: SIGINT
            labels: {{tier: back}}
            networks:
              front:
                aliases: [api.local]
                ipv4_address: {subnet}.10
          probe:
            image: busybox
            command: ["ping", "-c", "1", "-W", "5", "api.local"]
            networks: [front]
            depends_on: [app]
        networks:
          front:
            ipam:
              config: [{{subnet: {subnet}.0/24}}]
            labels: {{purpose: test}}
        secrets:
          token: {{file: ./token.txt}}
        """))
    compose("up", "-d")
    info = daemon.api("GET", f"/containers/{compose.project}-app-1/json").json()
    cfg = info["Config"]
    assert (cfg["Hostname"], cfg["WorkingDir"], cfg["User"], cfg["StopSignal"]) == \
        ("apphost", "/tmp", "1000:1000", "SIGINT")
    assert cfg["Labels"]["tier"] == "back"
    assert "/scratch" in info["HostConfig"]["Tmpfs"]
    net = f"{compose.project}_front"
    assert info["NetworkSettings"]["Networks"][net]["IPAddress"] == f"{subnet}.10"
    assert daemon.api("GET", f"/networks/{net}").json()["Labels"]["purpose"] == "test"
    assert compose("exec", "-T", "app", "cat", "/run/secrets/token").stdout == b"s3cret"
    assert compose("exec", "-T", "app", "id", "-u").stdout.strip() == b"1000"
    assert f"({subnet}.10)" in compose.wait_log("probe", f"({subnet}.10)")


def test_attached_up_multiplexes_until_all_exit(compose, tmp_path):
    (tmp_path / "compose.yaml").write_text(textwrap.dedent("""\
        services:
          first:
            image: busybox
            command: ["sh", "-c", "echo from-first; exit 3"]
          second:
            image: busybox
            command: ["sh", "-c", "echo from-second"]
            deploy: {replicas: 2}
        """))
    assert compose("up", "--bogus", check=False).returncode == 125
    for _ in range(2):  # the second run shows only its own output
        out = [" ".join(line.split())
               for line in compose("--ansi", "never", "up").stdout.decode().splitlines()]
        assert out[0] == "Attaching to first-1, second-1, second-2"
        assert sorted(out[1:]) == [
            "first-1 exited with code 3", "first-1 | from-first",
            "second-1 exited with code 0", "second-1 | from-second",
            "second-2 exited with code 0", "second-2 | from-second"]


def test_force_recreate_and_orphans(compose, tmp_path):
    service = f'    image: busybox\n    command: ["sh", "-c", "{IDLE}"]\n'
    (tmp_path / "compose.yaml").write_text(f"services:\n  old:\n{service}")
    compose("up", "-d")
    first = compose.ids()
    compose("up", "-d", "--force-recreate")
    assert compose.ids().keys() == first.keys() and compose.ids() != first
    (tmp_path / "compose.yaml").write_text(f"services:\n  new:\n{service}")
    result = compose("up", "-d")
    assert b"orphan containers" in result.stderr
    assert set(compose.ids()) == {f"{compose.project}-old-1", f"{compose.project}-new-1"}
    compose("up", "-d", "--remove-orphans")
    assert set(compose.ids()) == {f"{compose.project}-new-1"}
    # without any file, -p NAME is enough to take the project down (found by label)
    (tmp_path / "compose.yaml").unlink()
    assert f"{compose.project}-new-1" in compose("ps").stdout.decode()
    compose("down", "-t", "1")
    assert compose("ps", "-a").stdout.decode().splitlines()[1:] == []


def test_volumes_from_and_network_mode_of_another_service(compose, daemon, tmp_path):
    """volumes_from and network_mode: service:X use the other service's first container,
    which comes up first; `run` resolves them too."""
    (tmp_path / "compose.yaml").write_text(textwrap.dedent(f"""\
        services:
          data:
            image: busybox
            command: ["sh", "-c", "echo shared > /shared/f; {IDLE}"]
            volumes: [shared:/shared]
          app:
            image: busybox
            command: ["sh", "-c", "until test -f /shared/f; do sleep 0.1; done; cat /shared/f; touch /shared/x || echo ro; ip -o -4 addr; {IDLE}"]
            network_mode: service:data
            volumes_from: ["data:ro"]
        volumes:
          shared: {{}}
        """))
    compose("up", "-d")
    ids = compose.ids()
    data_id, app = ids[f"{compose.project}-data-1"], f"{compose.project}-app-1"
    info = daemon.api("GET", f"/containers/{app}/json").json()
    assert info["HostConfig"]["VolumesFrom"] == [f"{data_id}:ro"]
    assert info["HostConfig"]["NetworkMode"] == f"container:{data_id}"
    data_ip = daemon.api("GET", f"/containers/{data_id}/json").json()["NetworkSettings"]["Networks"][
        f"{compose.project}_default"]["IPAddress"]
    out = compose.wait_log("app", data_ip)
    assert "shared" in out and "ro" in out.split() and data_ip in out, out
    run = compose("run", "--rm", "-T", "app", "cat", "/shared/f")
    assert run.stdout.strip() == b"shared"

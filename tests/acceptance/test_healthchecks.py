"""Healthchecks with the real clients: docker CLI --health-* flags, docker-py's healthcheck
dict, the pyengine CLI; State.Health, `ps` status and `--filter health=`, events."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time

import pytest

from tests.conftest import needs_root, wait_for

DOCKER = shutil.which("docker")
pytestmark = [needs_root, pytest.mark.acceptance]
MS = 1_000_000


@pytest.fixture
def docker(daemon):
    if DOCKER is None:
        pytest.skip("docker CLI not installed")
    names: list[str] = []

    def run(*args, check=True, timeout=60):
        result = subprocess.run([DOCKER, *args], env=daemon.env(), capture_output=True, text=True, timeout=timeout)
        if check:
            assert result.returncode == 0, (args, result.stdout, result.stderr)
        return result

    run.names = names
    yield run
    if names:
        run("rm", "-f", *names, check=False)


def health(docker, name):
    out = docker("inspect", "-f", "{{json .State.Health}}", name).stdout.strip()
    return json.loads(out)


def test_docker_cli_health_flags_status_filter_and_events(docker):
    since = str(int(time.time()) - 1)
    docker.names += ["hc-ok", "hc-bad", "hc-plain"]
    docker("run", "-d", "--name", "hc-ok", "--health-cmd", "echo ok", "--health-interval", "200ms",
           "busybox", "sleep", "300")
    docker("run", "-d", "--name", "hc-bad", "--health-cmd", "echo bad >&2; exit 3", "--health-interval", "200ms",
           "--health-retries", "2", "busybox", "sleep", "300")
    docker("run", "-d", "--name", "hc-plain", "busybox", "sleep", "300")
    config = json.loads(docker("inspect", "-f", "{{json .Config.Healthcheck}}", "hc-bad").stdout)
    assert config == {"Test": ["CMD-SHELL", "echo bad >&2; exit 3"], "Interval": 200 * MS, "Retries": 2}

    wait_for(lambda: health(docker, "hc-ok")["Status"] == "healthy", what="hc-ok healthy")
    wait_for(lambda: health(docker, "hc-bad")["Status"] == "unhealthy", what="hc-bad unhealthy")
    ok, bad = health(docker, "hc-ok"), health(docker, "hc-bad")
    assert ok["FailingStreak"] == 0 and ok["Log"][-1]["ExitCode"] == 0 and ok["Log"][-1]["Output"] == "ok\n"
    assert bad["FailingStreak"] >= 2 and bad["Log"][-1]["ExitCode"] == 3 and bad["Log"][-1]["Output"] == "bad\n"
    assert docker("inspect", "-f", "{{json .State.Health}}", "hc-plain").stdout.strip() == "null"

    def names(health_filter):
        return set(docker("ps", "--filter", f"health={health_filter}", "--format", "{{.Names}}").stdout.split())

    assert "hc-ok" in names("healthy") and "hc-bad" in names("unhealthy")
    assert "hc-plain" in names("none") and not {"hc-ok", "hc-bad", "hc-plain"} & names("starting")
    status = docker("ps", "--filter", "name=hc-ok", "--format", "{{.Status}}").stdout.strip()
    assert status.startswith("Up ") and status.endswith("(healthy)")
    refused = docker("ps", "--filter", "health=bogus", check=False)
    assert refused.returncode != 0 and "Unrecognised filter value for health: bogus" in refused.stderr

    # The log keeps the last 5 results.
    wait_for(lambda: len(health(docker, "hc-ok")["Log"]) == 5 and health(docker, "hc-ok")["Log"], what="5 results")
    until = str(int(time.time()) + 1)
    events = docker("events", "--since", since, "--until", until, "--filter", "container=hc-ok",
                    "--format", "{{.Action}}").stdout.splitlines()
    # One status change event; probes are execs, with dockerd's exec events.
    assert events.count("health_status: healthy") == 1
    assert "exec_create: /bin/sh -c echo ok" in events and "exec_start: /bin/sh -c echo ok" in events
    assert "exec_die" in events
    # Probes do not pile up as exec ids on the container (one may be running right now).
    assert len(json.loads(docker("inspect", "-f", "{{json .ExecIDs}}", "hc-ok").stdout) or []) <= 1

    # Stopping ends the monitor (dockerd then reports unhealthy); a new start resets to starting.
    docker("stop", "-t", "0", "hc-ok")
    assert health(docker, "hc-ok")["Status"] == "unhealthy"
    docker("start", "hc-ok")
    h = health(docker, "hc-ok")
    assert h["Status"] in ("starting", "healthy") and h["FailingStreak"] == 0


def test_docker_cli_timeout_start_period_and_no_healthcheck(docker):
    docker.names += ["hc-slow", "hc-grace", "hc-none", "hc-base", "hc-inherit", "hc-override"]
    docker("run", "-d", "--name", "hc-slow", "--health-cmd", "echo partial; sleep 30", "--health-interval", "100ms",
           "--health-timeout", "300ms", "--health-retries", "1", "busybox", "sleep", "300")
    docker("run", "-d", "--name", "hc-grace", "--health-cmd", "exit 1", "--health-interval", "100ms",
           "--health-retries", "1", "--health-start-period", "1h", "busybox", "sleep", "300")
    wait_for(lambda: health(docker, "hc-slow")["Status"] == "unhealthy", what="timeout → unhealthy")
    last = health(docker, "hc-slow")["Log"][-1]
    assert last["ExitCode"] == -1 and last["Output"] == "Health check exceeded timeout (300ms): partial\n"
    wait_for(lambda: len(health(docker, "hc-grace")["Log"] or []) >= 3, what="probes in the start period")
    grace = health(docker, "hc-grace")
    assert (grace["Status"], grace["FailingStreak"]) == ("starting", 0)

    # An image's healthcheck is inherited, field by field, and --no-healthcheck drops it.
    docker("create", "--name", "hc-base", "--health-cmd", "exit 0", "--health-interval", "100ms", "busybox")
    docker("commit", "hc-base", "hc-image:latest")
    docker("run", "-d", "--name", "hc-inherit", "hc-image", "sleep", "300")
    docker("run", "-d", "--name", "hc-override", "--health-retries", "7", "hc-image", "sleep", "300")
    docker("run", "-d", "--name", "hc-none", "--no-healthcheck", "hc-image", "sleep", "300")
    override = json.loads(docker("inspect", "-f", "{{json .Config.Healthcheck}}", "hc-override").stdout)
    assert override == {"Test": ["CMD-SHELL", "exit 0"], "Interval": 100 * MS, "Retries": 7}
    wait_for(lambda: health(docker, "hc-inherit")["Status"] == "healthy", what="inherited check")
    assert docker("inspect", "-f", "{{json .Config.Healthcheck.Test}}", "hc-none").stdout.strip() == '["NONE"]'
    assert docker("inspect", "-f", "{{json .State.Health}}", "hc-none").stdout.strip() == "null"
    docker("rm", "-f", "hc-inherit", "hc-override", "hc-none", "hc-base")
    docker("rmi", "hc-image")


def test_docker_py_healthcheck_dict_and_validation(dclient):
    import docker

    bad = {"test": ["CMD", "true"], "interval": 10}
    with pytest.raises(docker.errors.APIError) as info:
        dclient.create_container("busybox", "true", healthcheck=bad)
    assert info.value.status_code == 400 and "Interval in Healthcheck cannot be less than 1ms" in str(info.value)
    container = dclient.create_container(
        "busybox", ["sleep", "300"],
        healthcheck={"test": ["CMD", "sh", "-c", "exit 0"], "interval": 100 * MS, "timeout": 1000 * MS, "retries": 2})
    dclient.start(container)
    wait_for(lambda: (dclient.inspect_container(container)["State"].get("Health") or {}).get("Status") == "healthy",
             what="docker-py container healthy")
    assert dclient.containers(filters={"health": "healthy"}, quiet=True) == [{"Id": container["Id"]}]
    dclient.pause(container)
    try:
        assert dclient.inspect_container(container)["State"]["Health"]["Status"] == "unhealthy"
    finally:
        dclient.unpause(container)
    wait_for(lambda: dclient.inspect_container(container)["State"]["Health"]["Status"] == "healthy",
             what="healthy again after unpause")
    dclient.remove_container(container, force=True)


def test_pyengine_cli_health_flags(daemon):
    def pyengine(*args):
        return subprocess.run([sys.executable, "-m", "engine.cli", *args], env=daemon.env(),
                              capture_output=True, text=True, timeout=60)

    result = pyengine("run", "-d", "--name", "pe-hc", "--health-cmd", "true", "--health-interval", "100ms",
                      "--health-retries", "2", "busybox", "sleep", "300")
    assert result.returncode == 0, result.stderr
    try:
        wait_for(lambda: "pe-hc" in pyengine("ps", "--filter", "health=healthy", "--format", "{{.Names}}").stdout,
                 what="pe-hc healthy")
        assert "(healthy)" in pyengine("ps", "--filter", "name=pe-hc", "--format", "{{.Status}}").stdout
        conflict = pyengine("run", "-d", "--no-healthcheck", "--health-cmd", "x", "busybox", "true")
        assert conflict.returncode == 125 and "--no-healthcheck conflicts with --health-* options" in conflict.stderr
    finally:
        pyengine("rm", "-f", "pe-hc")


def test_probes_racing_container_death_leave_the_daemon_up(dclient, daemon):
    """A probe spawned while its container is being killed fails as a probe result; it never
    takes the supervisor (or the daemon) down."""
    for _ in range(8):
        container = dclient.create_container(
            "busybox", ["sleep", "300"], healthcheck={"test": ["CMD", "true"], "interval": 2 * MS})
        dclient.start(container)
        wait_for(lambda: (dclient.inspect_container(container)["State"].get("Health") or {}).get("Log"),
                 what="a first probe")
        dclient.remove_container(container, force=True)
    assert daemon.api("GET", "/_ping").status_code == 200
    assert daemon.process.poll() is None

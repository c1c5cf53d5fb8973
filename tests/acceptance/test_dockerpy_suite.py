"""docker-py 7.0.0's own integration suite (from its sdist) against a private pyengined: the
tests listed in scripts/dockerpy_passing.txt — every one that passes here and needs neither
Docker Hub nor a swarm — must keep passing. scripts/dockerpy_suite.py runs the whole suite
and prints the rest."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from tests.conftest import needs_root

REPO = Path(__file__).resolve().parent.parent.parent
pytestmark = [needs_root, pytest.mark.acceptance, pytest.mark.timeout(900)]


def test_docker_py_integration_suite_subset_passes(tmp_path):
    script = REPO / "scripts" / "dockerpy_suite.py"
    try:
        subprocess.run([sys.executable, str(script), "--fetch-only"], check=True, timeout=300,
                       capture_output=True)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"docker-py's sdist could not be fetched from PyPI: {exc}")
    env = {**os.environ, "PYTHONPATH": f"{REPO}:{os.environ.get('PYTHONPATH', '')}".rstrip(":")}
    wanted = [line.strip() for line in (REPO / "scripts" / "dockerpy_passing.txt").read_text().splitlines()
              if line.strip() and not line.startswith("#")]

    def run(select: Path, lists: Path) -> tuple[subprocess.CompletedProcess, list[str], list[str]]:
        result = subprocess.run([sys.executable, str(script), "--select", str(select), "--lists", str(lists)],
                                env=env, capture_output=True, text=True, timeout=850)
        read = lambda name: (lists / name).read_text().splitlines() if (lists / name).exists() else []
        return result, read("passed.txt"), read("failed.txt")

    result, passed, failed = run(REPO / "scripts" / "dockerpy_passing.txt", tmp_path / "first")
    if failed:
        # docker-py's suite has timing-sensitive tests that are not ours: a failure must repeat
        # on a fresh daemon to count; one that passes the second time is reported, not fatal.
        (tmp_path / "again.txt").write_text("".join(f"{t}\n" for t in failed))
        result, passed_again, failed = run(tmp_path / "again.txt", tmp_path / "second")
        if not failed:
            warnings.warn(f"docker-py tests that failed once and then passed: {passed_again}")
        passed += passed_again
    assert not failed and result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert set(passed) == set(wanted)  # the list may name a test twice after merges

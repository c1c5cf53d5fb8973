"""docker-py 7.0.0's own integration suite (from its sdist) against a private pyengined: every
test in scripts/dockerpy_passing.txt — those that pass here and need neither Docker Hub nor a
swarm — passes, run once. Tests that are racy in docker-py itself are listed, with the reason,
in scripts/dockerpy_racy.txt and not run here. scripts/dockerpy_suite.py runs the whole suite
and prints the rest."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import needs_root

REPO = Path(__file__).resolve().parent.parent.parent
pytestmark = [needs_root, pytest.mark.acceptance, pytest.mark.timeout(900)]


def ids(path: Path) -> list[str]:
    return [i for i in (line.split("#", 1)[0].strip() for line in path.read_text().splitlines()) if i]


def test_docker_py_integration_suite_required_list_passes(tmp_path):
    script = REPO / "scripts" / "dockerpy_suite.py"
    try:
        subprocess.run([sys.executable, str(script), "--fetch-only"], check=True, timeout=300,
                       capture_output=True)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"docker-py's sdist could not be fetched from PyPI: {exc}")
    required = REPO / "scripts" / "dockerpy_passing.txt"
    wanted = set(ids(required))
    assert not wanted & set(ids(REPO / "scripts" / "dockerpy_racy.txt"))
    env = {**os.environ, "PYTHONPATH": f"{REPO}:{os.environ.get('PYTHONPATH', '')}".rstrip(":")}
    result = subprocess.run([sys.executable, str(script), "--select", str(required), "--lists", str(tmp_path)],
                            env=env, capture_output=True, text=True, timeout=850)
    report = result.stdout[-6000:] + result.stderr[-3000:]
    assert result.returncode == 0, report
    assert set((tmp_path / "passed.txt").read_text().splitlines()) == wanted, report

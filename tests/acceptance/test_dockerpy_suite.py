"""docker-py 7.0.0's own integration suite (from its sdist) against a private pyengined: the
tests listed in scripts/dockerpy_passing.txt — every one that passes here and needs neither
Docker Hub nor a swarm — must keep passing. scripts/dockerpy_suite.py runs the whole suite
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


def test_docker_py_integration_suite_subset_passes(tmp_path):
    script = REPO / "scripts" / "dockerpy_suite.py"
    try:
        subprocess.run([sys.executable, str(script), "--fetch-only"], check=True, timeout=300,
                       capture_output=True)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"docker-py's sdist could not be fetched from PyPI: {exc}")
    env = {**os.environ, "PYTHONPATH": f"{REPO}:{os.environ.get('PYTHONPATH', '')}".rstrip(":")}
    result = subprocess.run([sys.executable, str(script), "--select", str(REPO / "scripts" / "dockerpy_passing.txt"),
                             "--lists", str(tmp_path)], env=env, capture_output=True, text=True, timeout=850)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    passed = (tmp_path / "passed.txt").read_text().splitlines()
    wanted = [line.strip() for line in (REPO / "scripts" / "dockerpy_passing.txt").read_text().splitlines()
              if line.strip() and not line.startswith("#")]
    assert sorted(passed) == sorted(wanted)

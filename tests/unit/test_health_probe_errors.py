"""A probe whose exec cannot be spawned because the container is dying (stop/kill racing the
probe) is a failed probe, not an exception that escapes the container's supervisor (it took
the daemon down under `compose down` of a container probed every 100 ms)."""

from __future__ import annotations

import types

from engine.containers import ContainerConfig
from engine.containers.health import HealthConfig, exec_probe


class DyingExecs:
    def create(self, container_id, spec):
        return types.SimpleNamespace(id="e1")

    async def start(self, exec_id, sink):
        raise BrokenPipeError(32, "release child: Broken pipe")

    def forget(self, exec_id):
        self.forgotten = exec_id


async def test_spawn_failure_is_a_failed_probe():
    execs = DyingExecs()
    container = types.SimpleNamespace(id="c1", config=ContainerConfig())
    config = HealthConfig(test=("CMD", "true"))
    result = await exec_probe(execs, container)(config)
    assert result.exit_code == -1 and "Broken pipe" in result.output
    assert execs.forgotten == "e1"

"""`compose ls` summaries from container labels, `-f -` loading, and the secrets/configs
copied into containers (no daemon)."""

from __future__ import annotations

import io
import tarfile

import pytest

from engine.compose import ComposeError, ConfigError, LoadOptions, injection, load_project
from engine.compose import labels as L
from engine.compose import projects


def _container(project: str, state: str, files: str = "/p/compose.yaml") -> dict:
    return {"Id": f"{project}-{state}", "State": state,
            "Labels": {L.PROJECT: project, L.CONFIG_FILES: files}}


def test_projects_are_grouped_with_a_combined_status():
    found = projects.summarize([_container("b", "running"), _container("a", "running"),
                                _container("b", "exited"), _container("b", "running", "/o.yml"),
                                {"Id": "x", "State": "running", "Labels": {}}])
    assert [(p.name, p.status, p.config_files) for p in found] == [
        ("a", "running(1)", "/p/compose.yaml"),
        ("b", "exited(1), running(2)", "/p/compose.yaml,/o.yml")]
    assert [p.name for p in projects.matching(found, projects.name_filter(["name=^b"]))] == ["b"]
    with pytest.raises(ComposeError, match="invalid filter 'label'"):
        projects.name_filter(["label=x"])


STDIN_DOC = """\
services:
  app:
    image: busybox
    build: ./ctx
    secrets: [key, {source: key, target: /etc/key, mode: 0440, uid: "7"}]
    configs: [motd]
secrets:
  key: {environment: KEY}
configs:
  motd: {content: hi}
"""


def test_file_from_stdin_and_content_items(tmp_path):
    opts = LoadOptions(files=["-"], environ={"KEY": "k"}, cwd=str(tmp_path),
                       stdin=lambda: STDIN_DOC)
    project = load_project(opts)
    assert project.name == tmp_path.name.lower().replace(".", "")
    assert project.working_dir == str(tmp_path)
    assert project.services["app"].build["context"] == str(tmp_path / "ctx")
    with pytest.raises(ConfigError, match="standard input can be read only once"):
        load_project(LoadOptions(files=["-", "-"], cwd=str(tmp_path), stdin=lambda: ""))

    svc = project.services["app"]
    items = injection.content_items(project, svc)
    assert [(kind, injection.target_path(kind, item)) for kind, item, _ in items] == [
        ("secrets", "/run/secrets/key"), ("secrets", "/etc/key"), ("configs", "/motd")]
    tar = tarfile.open(fileobj=io.BytesIO(injection.archive([("/run/secrets/key", b"k", 0o400,
                                                                7, 0)])))
    member = tar.getmember("run/secrets/key")
    assert (member.mode, member.uid, tar.extractfile(member).read()) == (0o400, 7, b"k")

    unset = load_project(LoadOptions(files=["-"], environ={}, cwd=str(tmp_path),
                                     stdin=lambda: STDIN_DOC))
    with pytest.raises(ComposeError, match="'KEY' required by secret 'key' is not set"):
        injection.check(unset, ["app"])

"""The context tar API clients send to POST /build (engine.buildcontext.pack_context, used by
`pyengine build` and `pyengine compose build`): the same entries as docker-py's own packing for
.dockerignore patterns with `*`, `**`, `!` exceptions and ignored directories, and a Dockerfile
from outside the context sent under a random name."""

from __future__ import annotations

import tarfile

import pytest
from docker.utils import build as dockerpy_build

from engine.buildcontext import pack_context

IGNORE = "# comment\n*.log\n!keep.log\nbuild/\n**/deep\ndocs/**/*.md\n!docs/README.md\ndocker\n.git\n"
FILES = ("a.log", "keep.log", "sub/b.log", "sub/deep/c.log", "build/out/x", "build/y", "docs/README.md",
         "docs/a/z.md", "docs/w.md", "docker/Dockerfile", "Dockerfile", "src.py", ".git")


@pytest.fixture
def context(tmp_path):
    for rel in FILES:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(rel)
    (tmp_path / ".dockerignore").write_text(IGNORE)
    return tmp_path


def names(tar) -> list[str]:
    with tarfile.open(fileobj=tar) as tf:
        return sorted(tf.getnames())


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "docker/Dockerfile"])
def test_entries_as_docker_py_packs_them(context, dockerfile):
    patterns = [ln.strip() for ln in IGNORE.splitlines() if ln.strip() and not ln.startswith("#")]
    expected = names(dockerpy_build.tar(str(context), exclude=patterns, dockerfile=(dockerfile, None)))
    tar, name = pack_context(str(context), dockerfile)
    assert name == dockerfile
    assert names(tar) == expected
    assert "sub/b.log" in expected and "a.log" not in expected  # `*` stays within one directory


def test_owners_are_root(context):
    tar, _ = pack_context(str(context))
    with tarfile.open(fileobj=tar) as tf:
        assert {(m.uid, m.gid, m.uname, m.gname) for m in tf.getmembers()} == {(0, 0, "", "")}


def test_dockerfile_outside_the_context_goes_in_under_a_random_name(context, tmp_path_factory):
    outside = tmp_path_factory.mktemp("elsewhere") / "Build.dockerfile"
    outside.write_text("FROM scratch\n")
    for path in (str(outside), f"../{outside.parent.name}/{outside.name}"):
        tar, name = pack_context(str(context), path)
        assert name.startswith(".dockerfile.")
        with tarfile.open(fileobj=tar) as tf:
            assert tf.extractfile(name).read() == b"FROM scratch\n"
    with pytest.raises(OSError, match="unable to prepare context"):
        pack_context(str(context), str(outside) + ".missing")
    with pytest.raises(FileNotFoundError):
        pack_context(str(context / "nope"))

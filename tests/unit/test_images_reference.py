import pytest

from engine.errors import InvalidParameter
from engine.images import normalize_reference, parse_reference
from engine.images._changes import apply_changes


@pytest.mark.parametrize(
    "ref, want",
    [
        ("busybox", "busybox:latest"),
        ("busybox:1.36", "busybox:1.36"),
        ("library/busybox", "busybox:latest"),
        ("docker.io/library/busybox:latest", "busybox:latest"),
        ("index.docker.io/library/busybox", "busybox:latest"),
        ("foo/bar", "foo/bar:latest"),
        ("localhost:5000/foo", "localhost:5000/foo:latest"),
        ("quay.io/a/b:v1", "quay.io/a/b:v1"),
        ("busybox@sha256:" + "a" * 64, "busybox@sha256:" + "a" * 64),
    ],
)
def test_normalize(ref, want):
    assert normalize_reference(ref) == want


@pytest.mark.parametrize("bad", ["", "Busybox", "a:b:c", "foo@sha256:xyz", "-x", "a//b"])
def test_invalid(bad):
    with pytest.raises(InvalidParameter):
        parse_reference(bad)


def test_parts():
    r = parse_reference("localhost:5000/team/app:1")
    assert (r.domain, r.path, r.tag, r.repository) == ("localhost:5000", "team/app", "1", "localhost:5000/team/app")
    assert parse_reference("busybox").full_name == "docker.io/library/busybox"


def test_changes():
    cfg = apply_changes({}, [
        'CMD ["echo", "hi"]', "ENTRYPOINT /bin/entry --x", "ENV A=1 B='two words'", "ENV C 3",
        "WORKDIR /srv", "USER nobody", 'LABEL a=b "c d"=e', "EXPOSE 80 53/udp",
        'VOLUME ["/data"]', "STOPSIGNAL SIGINT",
    ])
    assert cfg["Cmd"] == ["echo", "hi"]
    assert cfg["Entrypoint"] == ["/bin/sh", "-c", "/bin/entry --x"]
    assert cfg["Env"] == ["A=1", "B=two words", "C=3"]
    assert cfg["WorkingDir"] == "/srv" and cfg["User"] == "nobody"
    assert cfg["Labels"] == {"a": "b", "c d": "e"}
    assert cfg["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}}
    assert cfg["Volumes"] == {"/data": {}} and cfg["StopSignal"] == "SIGINT"
    with pytest.raises(InvalidParameter, match="^run is not a valid change command$"):
        apply_changes({}, ["RUN echo"])

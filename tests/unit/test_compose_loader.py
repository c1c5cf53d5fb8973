"""engine.compose's loader: interpolation, .env, merge of -f files, extends, profiles, schema
validation with key paths, and the planner's reconciliation decisions (no daemon)."""

from __future__ import annotations

import textwrap

import pytest

from engine.compose import ConfigError, InterpolationError, LoadOptions, load_project
from engine.compose import labels as L
from engine.compose import planner
from engine.compose.interpolation import interpolate_string


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def load(tmp_path, *files, env=None, **kw):
    return load_project(LoadOptions(files=list(files), environ=env or {}, cwd=str(tmp_path),
                                    **kw))


def test_interpolation_forms():
    env = {"A": "1", "EMPTY": ""}
    assert interpolate_string("$A ${A} ${B:-x} ${EMPTY:-e} ${EMPTY-e} $$A", env) == "1 1 x e  $A"
    assert interpolate_string("${B:-${A}0}", env) == "10"
    assert interpolate_string("${A:+set}${B:+unset}", env) == "set"


def test_required_variable_error_names_the_key_path(tmp_path):
    f = write(tmp_path, "compose.yaml", """\
        services:
          web:
            image: busybox
            environment:
              TOKEN: ${TOKEN:?TOKEN must be set}
        """)
    with pytest.raises(InterpolationError) as info:
        load(tmp_path, f)
    msg = str(info.value)
    assert "services.web.environment.TOKEN" in msg and "TOKEN must be set" in msg
    project = load(tmp_path, f, env={"TOKEN": "abc"})
    assert project.services["web"].config["environment"] == {"TOKEN": "abc"}


def test_dotenv_and_project_name(tmp_path):
    f = write(tmp_path, "compose.yaml", """\
        services:
          web:
            image: "busybox:${TAG}"
            environment: [FROM_SHELL, FIXED=1]
        """)
    (tmp_path / ".env").write_text("TAG=fromdotenv\nCOMPOSE_PROJECT_NAME=DotEnvName\n")
    p = load(tmp_path, f, env={"FROM_SHELL": "yes"})
    assert p.services["web"].image == "busybox:fromdotenv"
    assert p.services["web"].config["environment"] == {"FROM_SHELL": "yes", "FIXED": "1"}
    assert p.name == "dotenvname"
    assert load(tmp_path, f, env={"TAG": "shell"}, project_name="cli").name == "cli"
    assert load(tmp_path, f, env={"TAG": "shell"}).services["web"].image == "busybox:shell"


def test_override_files_merge_as_compose_does(tmp_path):
    base = write(tmp_path, "compose.yaml", """\
        services:
          web:
            image: busybox
            command: ["sleep", "1"]
            ports: ["8080:80"]
            environment: {A: "1", B: "1"}
            volumes: ["data:/data", "./x:/x"]
            labels: [one=1]
        volumes:
          data: {}
        """)
    over = write(tmp_path, "override.yaml", """\
        services:
          web:
            command: sleep 2
            ports: ["9090:90"]
            environment: [B=2, C=3]
            volumes: ["other:/data:ro"]
            labels: {two: "2"}
        volumes:
          other: {}
        """)
    web = load(tmp_path, base, over).services["web"].config
    assert web["command"] == "sleep 2"
    assert [p["published"] for p in web["ports"]] == ["8080", "9090"]
    assert web["environment"] == {"A": "1", "B": "2", "C": "3"}
    assert {v["target"]: v["source"] for v in web["volumes"]} == {
        "/data": "other", "/x": str(tmp_path / "x")}
    assert web["labels"] == {"one": "1", "two": "2"}


def test_default_override_file_is_picked_up(tmp_path):
    write(tmp_path, "compose.yaml", "services:\n  web:\n    image: busybox\n")
    write(tmp_path, "compose.override.yaml", "services:\n  web:\n    image: other\n")
    assert load(tmp_path).services["web"].image == "other"


def test_schema_errors_name_the_key_path(tmp_path):
    f = write(tmp_path, "compose.yaml", """\
        services:
          web:
            image: busybox
            ports:
              - target: eighty
        """)
    with pytest.raises(ConfigError, match=r"services\.web\.ports\[0\]\.target"):
        load(tmp_path, f)
    g = write(tmp_path, "typo.yaml", "services:\n  web:\n    imagee: busybox\n")
    with pytest.raises(ConfigError, match=r"typo\.yaml.*services\.web\.imagee"):
        load(tmp_path, g)


def test_known_valid_documents_skip_validation_invalid_ones_never_do(tmp_path, monkeypatch):
    from engine.compose import schema

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    f = write(tmp_path, "compose.yaml", "services:\n  web:\n    image: busybox\n")
    load(tmp_path, f)  # validated, then its digest recorded
    assert len(list((tmp_path / "cache" / "pyengine" / "compose-valid").iterdir())) == 1

    def no_validator():
        raise AssertionError("validated again")

    monkeypatch.setattr(schema, "_validator", no_validator)
    assert load(tmp_path, f).services["web"].image == "busybox"  # from the cache
    monkeypatch.undo()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    write(tmp_path, "compose.yaml", "services:\n  web:\n    image: busybox\n    imagee: x\n")
    for _ in range(2):  # an invalid file is refused every time, with its key path
        with pytest.raises(ConfigError, match=r"services\.web\.imagee"):
            load(tmp_path, f)
    assert len(list((tmp_path / "cache" / "pyengine" / "compose-valid").iterdir())) == 1


def test_an_unchanged_file_is_not_parsed_again(tmp_path, monkeypatch):
    import sys

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    f = write(tmp_path, "compose.yaml", "services:\n  web:\n    image: busybox\n"
                                        "    environment: {N: 1, F: 1.5, E: null}\n"
                                        "    tty: true\n"
                                        "    labels: [a=b]\n")
    first = load(tmp_path, f).services["web"].config
    monkeypatch.setitem(sys.modules, "yaml", None)  # `import yaml` fails from here on
    assert load(tmp_path, f).services["web"].config == first  # read back exactly
    write(tmp_path, "compose.yaml", "services:\n  web:\n    image: busybox:1\n")
    with pytest.raises(ImportError):  # changed text: parsed again
        load(tmp_path, f)
    monkeypatch.delitem(sys.modules, "yaml")
    write(tmp_path, "compose.yaml", "services:\n  web: [\n")
    for _ in range(2):  # broken YAML is never cached, and named with its file
        with pytest.raises(ConfigError,
                           match=r"(?s)compose\.yaml: invalid YAML.*in \"/.*compose\.yaml\", line"):
            load(tmp_path, f)


def test_references_are_checked(tmp_path):
    f = write(tmp_path, "compose.yaml", """\
        services:
          web: {image: busybox, volumes: ["missing:/m"]}
        """)
    with pytest.raises(ConfigError, match=r"services\.web\.volumes.*missing"):
        load(tmp_path, f)
    g = write(tmp_path, "cycle.yaml", """\
        services:
          a: {image: busybox, depends_on: [b]}
          b: {image: busybox, depends_on: [a]}
        """)
    with pytest.raises(ConfigError, match="cycle"):
        load(tmp_path, g)


def test_extends_and_profiles(tmp_path):
    write(tmp_path, "base.yaml", """\
        services:
          common:
            image: busybox
            environment: {LEVEL: base}
            env_file: base.env
        """)
    (tmp_path / "base.env").write_text("FROM_FILE=1\n")
    f = write(tmp_path, "compose.yaml", """\
        services:
          web:
            extends: {file: base.yaml, service: common}
            environment: {LEVEL: web}
          debug:
            image: busybox
            profiles: [debug]
        """)
    p = load(tmp_path, f)
    assert p.services["web"].config["environment"] == {"FROM_FILE": "1", "LEVEL": "web"}
    assert "debug" not in p.services and "debug" in p.disabled
    assert "debug" in load(tmp_path, f, profiles=["debug"]).services
    assert "debug" in load(tmp_path, f, targets=["debug"]).services  # named: enabled


def _summary(service, number, hash_, state="running", image="sha256:i"):
    return {"Id": f"{service}{number}", "State": state, "ImageID": image,
            "Names": [f"/p-{service}-{number}"],
            "Labels": {L.SERVICE: service, L.NUMBER: str(number), L.CONFIG_HASH: hash_}}


def test_planner_reconciles(tmp_path):
    f = write(tmp_path, "compose.yaml", "services:\n  web: {image: busybox}\n")
    project = load(tmp_path, f)
    web = project.services["web"]
    h = web.config_hash
    kinds = lambda actions: [(a.kind, a.number) for a in actions]  # noqa: E731
    assert kinds(planner.plan_service(web, [_summary("web", 1, h)], 1, image_id="sha256:i")) \
        == [("keep", 1)]
    assert kinds(planner.plan_service(web, [_summary("web", 1, "old")], 1)) == [("recreate", 1)]
    assert kinds(planner.plan_service(web, [_summary("web", 1, h, image="sha256:old")], 1,
                                      image_id="sha256:i")) == [("recreate", 1)]
    assert kinds(planner.plan_service(web, [_summary("web", 1, h, "exited")], 1)) == \
        [("start", 1)]
    assert kinds(planner.plan_service(web, [_summary("web", 1, h)], 3)) == \
        [("keep", 1), ("create", 2), ("create", 3)]
    three = [_summary("web", n, h) for n in (1, 2, 3)]
    assert kinds(planner.plan_service(web, three, 1)) == [("remove", 2), ("remove", 3),
                                                          ("keep", 1)]
    orphan = _summary("gone", 1, h)
    assert planner.orphans(project, three + [orphan]) == [orphan]


def test_container_body(tmp_path):
    from engine.compose import create_body

    (tmp_path / "pw.txt").write_text("secret")
    (tmp_path / "custom.env").write_text("PORT=8081\n")
    f = write(tmp_path, "compose.yaml", """\
        services:
          web:
            image: busybox
            command: echo "$$HOME and ${PORT}"
            ports: ["127.0.0.1:${PORT}:80/udp", "9000-9001:90-91"]
            volumes: [data:/data:ro, /tmp:/host-tmp, {type: tmpfs, target: /scratch}]
            secrets: [pw]
            networks:
              front: {aliases: [www], ipv4_address: 10.9.0.5}
              back: {}
            deploy: {resources: {limits: {cpus: "0.5", memory: 64m}}}
            pids_limit: 20
            restart: on-failure:3
            stop_grace_period: 1m30s
            healthcheck: {test: "true", interval: 2s, retries: 3}
        volumes: {data: {}}
        networks: {front: {}, back: {external: true, name: shared}}
        secrets: {pw: {file: ./pw.txt}}
        """)
    project = load(tmp_path, f, env_files=["custom.env"], project_name="demo")
    body = create_body(project, project.services["web"], 2)
    host = body["HostConfig"]
    assert body["Cmd"] == ["echo", "$HOME and 8081"]
    assert host["PortBindings"] == {
        "80/udp": [{"HostIp": "127.0.0.1", "HostPort": "8081"}],
        "90/tcp": [{"HostIp": "", "HostPort": "9000"}],
        "91/tcp": [{"HostIp": "", "HostPort": "9001"}]}
    assert host["Binds"] == ["demo_data:/data:ro", "/tmp:/host-tmp:rw",
                             f"{tmp_path}/pw.txt:/run/secrets/pw:ro"]
    assert set(host["Tmpfs"]) == {"/scratch", "/run/secrets"}
    assert (host["NanoCpus"], host["Memory"], host["PidsLimit"]) == (500_000_000, 64 << 20, 20)
    assert host["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert host["NetworkMode"] == "demo_front"
    assert body["NetworkingConfig"]["EndpointsConfig"]["demo_front"] == {
        "Aliases": ["web", "www"], "IPAMConfig": {"IPv4Address": "10.9.0.5"}}
    assert project.network_name("back") == "shared"
    assert body["StopTimeout"] == 90
    assert body["Healthcheck"] == {"Test": ["CMD-SHELL", "true"], "Interval": 2_000_000_000,
                                   "Retries": 3}
    labels = body["Labels"]
    assert labels[L.PROJECT] == "demo" and labels[L.NUMBER] == "2"
    assert labels[L.ONEOFF] == "False" and labels[L.CONFIG_HASH] == \
        project.services["web"].config_hash


def test_kernel_knobs_in_the_container_body(tmp_path):
    from engine.compose import create_body

    f = write(tmp_path, "compose.yaml", """\
        services:
          web:
            image: busybox
            sysctls: [net.core.somaxconn=1024]
            oom_score_adj: 200
            oom_kill_disable: true
            mem_swappiness: ${SWAP}
            cgroup_parent: /mine
            cgroup: host
            blkio_config:
              weight: 300
              weight_device: [{path: /dev/vda, weight: 400}]
              device_read_bps: [{path: /dev/vda, rate: 12mb}]
              device_write_iops: [{path: /dev/vda, rate: 30}]
        """)
    (tmp_path / ".env").write_text("SWAP=10\n")
    project = load(tmp_path, f, project_name="demo")
    host = create_body(project, project.services["web"], 1)["HostConfig"]
    assert host["Sysctls"] == {"net.core.somaxconn": "1024"}
    assert (host["OomScoreAdj"], host["OomKillDisable"], host["MemorySwappiness"]) == (200, True, 10)
    assert (host["CgroupParent"], host["CgroupnsMode"], host["BlkioWeight"]) == ("/mine", "host", 300)
    assert host["BlkioWeightDevice"] == [{"Path": "/dev/vda", "Weight": 400}]
    assert host["BlkioDeviceReadBps"] == [{"Path": "/dev/vda", "Rate": 12 << 20}]
    assert host["BlkioDeviceWriteIOps"] == [{"Path": "/dev/vda", "Rate": 30}]


def test_interpolated_values_are_typed_like_literals(tmp_path):
    f = write(tmp_path, "compose.yaml", """\
        services:
          web:
            image: busybox
            init: ${INIT}
            deploy: {replicas: "${N}"}
            ports: [{target: "${PORT}", published: "${PORT}"}]
        """)
    web = load(tmp_path, f, env={"N": "3", "PORT": "80", "INIT": "true"}).services["web"]
    assert web.scale == 3 and web.config["init"] is True
    assert web.config["ports"][0]["target"] == 80
    with pytest.raises(ConfigError, match=r"services\.web\.deploy\.replicas"):
        load(tmp_path, f, env={"N": "three", "PORT": "80", "INIT": "true"})


def test_first_error_of_concurrent_failures():
    from engine.compose.errors import ComposeError, first_error

    a, b = ComposeError("a failed"), ComposeError("b failed")
    group = BaseExceptionGroup("x", [BaseExceptionGroup("y", [a]), b])
    assert first_error(group, (ComposeError,)) is a
    assert first_error(BaseExceptionGroup("z", [a, KeyError("bug")]), (ComposeError,)) is None


def test_volumes_from_and_network_mode_of_a_service(tmp_path):
    """A service's volumes_from and network_mode: service:X name the first container of
    another service (an implicit dependency, as with Compose); container:NAME is passed on."""
    from engine.compose import create_body

    f = write(tmp_path, "compose.yaml", """\
        services:
          data: {image: busybox}
          side: {image: busybox}
          app:
            image: busybox
            network_mode: service:side
            volumes_from: ["data:ro", "container:other-ctr:rw", side]
        """)
    project = load(tmp_path, f)
    app = project.services["app"]
    assert set(app.depends_on) == {"data", "side"}
    assert project.select(["app"])[-1] == "app"  # its sources come up first
    host = create_body(project, app, 1, service_containers={"data": "d1", "side": "s1"})["HostConfig"]
    assert host["VolumesFrom"] == ["d1:ro", "other-ctr:rw", "s1"]
    assert host["NetworkMode"] == "container:s1"
    with pytest.raises(ConfigError, match=r"services\.app\.volumes_from data: service 'data' has no container"):
        create_body(project, app, 1, service_containers={"side": "s1"})
    g = write(tmp_path, "missing.yaml", """\
        services:
          app: {image: busybox, volumes_from: [nothere]}
        """)
    with pytest.raises(ConfigError, match=r"services\.app: service 'nothere' \(network_mode or volumes_from\) is undefined"):
        load(tmp_path, g)

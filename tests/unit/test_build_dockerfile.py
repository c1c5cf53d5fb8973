"""Dockerfile parsing, variable substitution, stage planning, .dockerignore matching and
cache keys of the builder (engine.build), without a daemon."""

from __future__ import annotations

import os

import pytest

from engine.build import ParseError, ShellLex, cache_key, parse, plan
from engine.build.context import checksum, extract_tar, find_sources, go_match
from engine.build.copy import destination
from engine.buildcontext import DockerIgnore, read_patterns
from engine.errors import InvalidParameter
from engine.scope import resolve_in_root


# ---------------------------------------------------------------------------- parser

def test_continuations_comments_and_forms():
    df = parse(
        "# syntax=docker/dockerfile:1\n"
        "FROM busybox AS base\n"
        "RUN echo a \\\n"
        "# a comment inside the continuation\n"
        "    && echo b\n"
        "\n"
        'CMD ["sh", "-c", "echo hi"]\n'
        "ENTRYPOINT echo not json [\n"
        "COPY --chown=1:2 --from=base a b /dst/\n"
    )
    kinds = [n.keyword for n in df.nodes]
    assert kinds == ["from", "run", "cmd", "entrypoint", "copy"]
    run = df.nodes[1]
    assert run.args == ("echo a     && echo b",) and not run.json_form and run.line == 3
    assert df.nodes[2].json_form and df.nodes[2].args == ("sh", "-c", "echo hi")
    assert not df.nodes[3].json_form
    copy = df.nodes[4]
    assert copy.flags == ("--chown=1:2", "--from=base") and copy.args == ("a", "b", "/dst/")
    assert copy.line == 9


def test_escape_directive_backtick():
    df = parse("# escape=`\nFROM busybox\nRUN echo a `\n  b\nCOPY a\\b c\\\n")
    assert df.escape == "`"
    assert df.nodes[1].args == ("echo a   b",)
    assert df.nodes[2].args == ("a\\b", "c\\")


def test_directive_only_at_top():
    df = parse("FROM busybox\n# escape=`\nRUN echo a \\\n b\n")
    assert df.escape == "\\" and df.nodes[1].args == ("echo a  b",)


def test_unknown_instruction_names_its_line():
    with pytest.raises(ParseError) as info:
        parse("FROM busybox\n\nFOO bar\n")
    assert info.value.message == "dockerfile parse error line 3: unknown instruction: FOO"


@pytest.mark.parametrize("text,message", [
    ("FROM busybox\nCOPY onlyone\n", "line 2: COPY requires at least two arguments"),
    ("RUN true\n", "no build stage in current context"),
    ("FROM busybox\nRUN --mount=type=cache,target=/x true\n", "line 2: the --mount option requires BuildKit"),
    ("FROM busybox\nCOPY --bogus=1 a b\n", "line 2: Unknown flag: bogus"),
    ("FROM busybox\nSHELL /bin/bash -c\n", "line 2: SHELL requires the arguments to be in JSON form"),
    ("FROM busybox AS 1bad\n", 'line 1: invalid name for build stage: "1bad"'),
    ("FROM busybox\nENV a=b c\n", "failed to parse Dockerfile: Syntax error - can't find = in \"c\""),
    ("FROM busybox\nENV a\n", "failed to parse Dockerfile: ENV must have two arguments"),
    ("FROM busybox\nLABEL =x\n", "line 2: LABEL names can not be blank"),
    ("FROM busybox\nHEALTHCHECK\n", "line 2: HEALTHCHECK requires at least one argument"),
    ("FROM busybox\nHEALTHCHECK BOGUS\n", 'line 2: Unknown type "BOGUS" in HEALTHCHECK (try CMD)'),
    ("FROM busybox\nONBUILD FROM x\n", "line 2: FROM isn't allowed as an ONBUILD trigger"),
])
def test_invalid_dockerfiles(text, message):
    with pytest.raises(InvalidParameter) as info:
        plan(parse(text))
    assert message in info.value.message


def test_env_label_arg_forms():
    df = parse('FROM x\nENV key some value\nENV a="b c" d=e\nLABEL "k 1"=v\nARG n\nARG m=1\n'
               "HEALTHCHECK --interval=5s CMD true\nHEALTHCHECK NONE\n")
    assert df.nodes[1].args == ("key=some value",)
    assert df.nodes[2].args == ('a="b c"', "d=e")
    assert df.nodes[3].args == ('"k 1"=v',)
    assert df.nodes[4].args == ("n",) and df.nodes[5].args == ("m=1",)
    assert df.nodes[6].args == ("CMD", "true") and df.nodes[6].flags == ("--interval=5s",)
    assert df.nodes[7].args == ("NONE",)


def test_stages_target_and_unused_stage():
    p = plan(parse("ARG V=1\nFROM busybox AS a\nRUN true\nFROM busybox AS unused\n"
                   "FROM a AS b\nCOPY --from=0 /x /y\nFROM busybox\nCOPY --from=b /y /z\n"))
    assert [n.args for n in p.meta_args] == [("V=1",)]
    final = p.target_stage(None)
    assert [s.name for s in p.needed(final)] == ["a", "b", None]
    assert [s.name for s in p.needed(p.target_stage("b"))] == ["a", "b"]
    with pytest.raises(InvalidParameter, match="failed to reach build target nope"):
        p.target_stage("nope")


# ---------------------------------------------------------------------------- substitution

@pytest.mark.parametrize("word,expected", [
    ("$A", "a"), ("${A}b", "ab"), ("${UNSET:-dflt}", "dflt"), ("${EMPTY:-dflt}", "dflt"),
    ("${EMPTY-dflt}", ""), ("${A:-dflt}", "a"), ("${A:+alt}", "alt"), ("${UNSET:+alt}", ""),
    ("${EMPTY+alt}", "alt"), ("'$A'", "$A"), ('"$A b"', "a b"), ("\\$A", "$A"),
    ('"\\$A"', "$A"), ('"a\\b"', "a\\b"), ("${A:-${B}}", "a"), ("${UNSET:-x$B}", "xbee"),
    ("${PATHV%/*}", "/usr/local"), ("${PATHV##*/}", "bin"), ("$$", "$$"), ("a$", "a$"),
])
def test_substitution(word, expected):
    env = {"A": "a", "B": "bee", "EMPTY": "", "PATHV": "/usr/local/bin"}
    assert ShellLex().word(word, env) == expected


def test_substitution_words_and_errors():
    lex = ShellLex()
    assert lex.words('a "b c" $V', {"V": "x y"}) == ["a", "b c", "x", "y"]
    with pytest.raises(InvalidParameter, match="NEED: must be set"):
        lex.word("${NEED:?must be set}", {})
    assert ShellLex("`").word("a`$B", {"B": "x"}) == "a$B"


# ---------------------------------------------------------------------------- .dockerignore

def test_dockerignore_semantics():
    ig = DockerIgnore.from_text("# comment\n*.log\n!keep.log\nbuild/\n**/tmp\n/abs/x\ndocs/**/*.md\n!docs/README.md\n")
    assert ig.matches("a.log") and not ig.matches("keep.log")
    assert not ig.matches("sub/a.log")  # * does not cross /
    assert ig.matches("build") and ig.matches("build/deep/file")
    assert ig.matches("tmp") and ig.matches("x/y/tmp") and ig.matches("x/tmp/file")
    assert ig.matches("abs/x")
    assert ig.matches("docs/a/b/c.md") and ig.matches("docs/c.md") and not ig.matches("docs/README.md")
    assert read_patterns("  ./a/../b  \n!/c\n") == ["b", "!c"]


def test_dockerignore_applied_to_the_context():
    import io
    import tarfile

    from engine.build.context import Context

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for rel in ("a.txt", "dir/x.log", "dir/keep.log", "other/y.log", "Dockerfile"):
            info = tarfile.TarInfo(rel)
            info.size = len(rel)
            tf.addfile(info, io.BytesIO(rel.encode()))
    context = Context.load(buf)
    context.apply_ignore(DockerIgnore.from_text("dir\n!dir/keep.log\nother\n"))
    assert sorted(context.entries) == ["Dockerfile", "a.txt", "dir", "dir/keep.log"]


# ---------------------------------------------------------------------------- context safety

def test_resolve_in_root_never_leaves_root(tmp_path):
    root = tmp_path / "root"
    (root / "d").mkdir(parents=True)
    os.symlink("/etc", root / "abs")
    os.symlink("../../..", root / "d" / "up")
    assert resolve_in_root(str(root), "abs/passwd") == str(root / "etc" / "passwd")
    assert resolve_in_root(str(root), "d/up/x") == str(root / "x")
    assert resolve_in_root(str(root), "../../x") == str(root / "x")


def test_extract_refuses_escapes(tmp_path):
    import io
    import tarfile

    def tar_of(*members):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tf:
            for info, data in members:
                tf.addfile(info, io.BytesIO(data) if data is not None else None)
        buf.seek(0)
        return buf

    link = tarfile.TarInfo("link")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc"
    through = tarfile.TarInfo("link/evil")
    through.size = 1
    with pytest.raises(InvalidParameter, match="through a symlink"):
        extract_tar(tar_of((link, None), (through, b"x")), str(tmp_path / "a"))
    dotdot = tarfile.TarInfo("../evil")
    dotdot.size = 1
    out = tmp_path / "b"
    extract_tar(tar_of((dotdot, b"x")), str(out))  # made relative: lands inside
    assert (out / "evil").read_bytes() == b"x" and not (tmp_path / "evil").exists()


def test_sources_globs_and_checksums(tmp_path):
    for rel in ("a.txt", "b.txt", "c.md", "sub/d.txt"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(rel)
    names = [n for _, n in find_sources(str(tmp_path), "*.txt")]
    assert names == ["a.txt", "b.txt"]
    assert [n for _, n in find_sources(str(tmp_path), "sub/*.txt")] == ["sub/d.txt"]
    assert go_match("*/d.txt", "sub/d.txt") and not go_match("*.txt", "sub/d.txt")
    with pytest.raises(Exception, match="no source files were specified"):
        find_sources(str(tmp_path), "*.none")
    first = checksum([str(tmp_path / "sub")])
    os.utime(tmp_path / "sub" / "d.txt", (1, 1))
    assert checksum([str(tmp_path / "sub")]) == first  # times do not matter
    (tmp_path / "sub" / "d.txt").write_text("changed")
    assert checksum([str(tmp_path / "sub")]) != first and first.startswith("dir:")
    assert checksum([str(tmp_path / "a.txt")]).startswith("file:")


def test_copy_destination_rules():
    assert destination("/app/", "/") == ("/app", True)
    assert destination("app", "/work") == ("/work/app", False)
    assert destination(".", "/work") == ("/work", True)


def test_cache_key_depends_on_parent_and_config():
    config = {"Cmd": ["/bin/sh", "-c", "echo"], "Env": ["A=1"]}
    assert cache_key("sha256:a", config) == cache_key("sha256:a", dict(reversed(list(config.items()))))
    assert cache_key("sha256:a", config) != cache_key("sha256:b", config)
    assert cache_key("sha256:a", config) != cache_key("sha256:a", {**config, "Env": ["A=2"]})


# ---------------------------------------------------------------------------- COPY rules

@pytest.mark.skipif(os.geteuid() != 0, reason="COPY sets owners (root)")
def test_copy_destination_and_trailing_slash_rules(tmp_path):
    from engine.build.copy import copy_sources

    ctx_dir, rootfs = tmp_path / "ctx", tmp_path / "rootfs"
    (ctx_dir / "dir" / "sub").mkdir(parents=True)
    (ctx_dir / "a.txt").write_text("a")
    (ctx_dir / "dir" / "sub" / "b.txt").write_text("b")
    (rootfs / "existing").mkdir(parents=True)
    os.symlink("/", rootfs / "escape")
    src = lambda rel: [(str(ctx_dir / rel), rel)]  # noqa: E731
    copy_sources(str(rootfs), src("a.txt"), "/file", "/")          # no slash: the file itself
    copy_sources(str(rootfs), src("a.txt"), "/newdir/", "/")       # slash: into a directory
    copy_sources(str(rootfs), src("a.txt"), "/existing", "/")      # an existing dir: into it
    copy_sources(str(rootfs), src("a.txt"), "rel.txt", "/work")    # relative to WORKDIR
    copy_sources(str(rootfs), src("dir"), "/d", "/")               # a dir: its contents
    copy_sources(str(rootfs), src("a.txt"), "/escape/tmp/x", "/")  # a symlink stays inside
    assert (rootfs / "file").read_text() == "a"
    assert (rootfs / "newdir" / "a.txt").read_text() == "a"
    assert (rootfs / "existing" / "a.txt").read_text() == "a"
    assert (rootfs / "work" / "rel.txt").read_text() == "a"
    assert (rootfs / "d" / "sub" / "b.txt").read_text() == "b" and not (rootfs / "d" / "dir").exists()
    assert (rootfs / "tmp" / "x").read_text() == "a"
    with pytest.raises(InvalidParameter, match="must be a directory and end with a /"):
        copy_sources(str(rootfs), src("a.txt") + src("dir"), "/multi", "/")


def test_context_index_matches_disk_rules(tmp_path):
    import io
    import tarfile

    from engine.build.context import Context

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in (("Dockerfile", b"FROM x\n"), ("src/a.txt", b"a"), ("src/b.log", b"b")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("up")
        link.type, link.linkname = tarfile.SYMTYPE, "../../etc"
        tf.addfile(link)
    buf.seek(0)
    context = Context.load(buf)
    assert context.read("Dockerfile") == b"FROM x\n"
    assert context.resolve("up/passwd") == "etc/passwd"  # never above the context
    context.apply_ignore(DockerIgnore.from_text("*/*.log\n"))
    assert [n for _, n in context.find("src/*")] == ["src/a.txt"]
    before = context.checksum(["src"])
    out = context.extract(str(tmp_path / "x"))
    assert sorted(os.listdir(os.path.join(out, "src"))) == ["a.txt"]
    assert before.startswith("dir:") and context.checksum(["src"]) == before


def test_a_stage_name_used_twice_is_refused_in_dockerds_words():
    with pytest.raises(ParseError, match="line 2: a stage name already used"):
        plan(parse("FROM busybox AS a\nFROM busybox AS A\n"))

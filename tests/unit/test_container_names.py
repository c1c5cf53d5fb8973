"""Generated container names: Docker's adjective_scientist shape, never one in use."""

import re

from engine.containers import names


def test_generated_names_are_free_and_docker_shaped():
    seen = set()
    for _ in range(200):
        name = names.generate(lambda n: n in seen)
        assert name not in seen and re.fullmatch(r"[a-z]+_[a-z]+[0-9]?", name)
        seen.add(name)


def test_when_every_name_is_taken_a_unique_fallback_is_used():
    a, b = names.generate(lambda n: True), names.generate(lambda n: True)
    assert re.fullmatch(r"container_[0-9a-f]{12}", a) and a != b


def test_container_ids_are_64_hex_digits_and_never_repeat_across_refills():
    from engine.containers.manager import _IdSource

    source = _IdSource(batch=4)  # refilled every 4 ids
    ids = [source.new() for _ in range(50)]
    assert len(set(ids)) == 50 and all(re.fullmatch(r"[0-9a-f]{64}", i) for i in ids)

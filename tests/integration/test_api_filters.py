"""List and prune filters as dockerd checks and applies them: an unknown key or a bad value is
refused with dockerd's message on a daemon with nothing to match (checked per item, such a
request went through on an empty list), and image prune's until / label! select as documented."""

from __future__ import annotations

import json
import time

import pytest

from tests.conftest import needs_root, private_daemon

pytestmark = needs_root


@pytest.fixture(scope="module")
def empty_daemon():
    with private_daemon(prefix="pe-filters-", bootstrap=False) as handle:
        yield handle


def _filters(**values) -> dict:
    return {"filters": json.dumps({key.replace("_", "-"): [v] for key, v in values.items()})}


@pytest.mark.parametrize("method,path,filters,status,message", [
    ("GET", "/containers/json", _filters(bogus="1"), 400, "Invalid filter 'bogus'"),
    ("GET", "/containers/json", _filters(status="bogus"), 400, "Invalid filter 'status=bogus'"),
    ("GET", "/containers/json", _filters(health="bogus"), 400, "Unrecognised filter value for health: bogus"),
    ("GET", "/containers/json", _filters(exited="abc"), 400, 'strconv.Atoi: parsing "abc": invalid syntax'),
    ("GET", "/containers/json", _filters(is_task="maybe"), 400, "Invalid filter 'is-task=[maybe]'"),
    ("GET", "/containers/json", _filters(since="nosuch"), 404, "No such container: nosuch"),
    ("GET", "/containers/json", _filters(publish="x"), 400, "invalid port specification: 'x' in filter 'publish'"),
    ("GET", "/images/json", _filters(dangling="maybe"), 400, "Invalid filter 'dangling=[maybe]'"),
    ("GET", "/images/json", _filters(bogus="1"), 400, "Invalid filter 'bogus'"),
    ("GET", "/volumes", _filters(bogus="1"), 400, "Invalid filter 'bogus'"),
    ("GET", "/volumes", _filters(dangling="maybe"), 400, "Invalid filter 'dangling=[maybe]'"),
    ("GET", "/networks", _filters(type="bogus"), 400, "invalid filter: 'type'='bogus'"),
    ("POST", "/containers/prune", _filters(bogus="1"), 400, "Invalid filter 'bogus'"),
    ("POST", "/images/prune", _filters(bogus="1"), 400, "Invalid filter 'bogus'"),
    ("POST", "/images/prune", _filters(until="bogus"), 400, 'failed to parse value as time or duration: "bogus"'),
    ("POST", "/networks/prune", _filters(bogus="1"), 400, "Invalid filter 'bogus'"),
    ("POST", "/volumes/prune", _filters(all="1"), 400, "Invalid filter 'all'"),  # API 1.41 has no `all`
    ("POST", "/build/prune", _filters(bogus="1"), 400, "Invalid filter 'bogus'"),
])
def test_bad_filters_are_refused_with_nothing_to_match(empty_daemon, method, path, filters, status, message):
    response = empty_daemon.api(method, "/v1.41" + path, params=filters)
    assert (response.status_code, response.json()) == (status, {"message": message})


def test_is_task_true_lists_no_container(dclient):
    cid = dclient.create_container("busybox", "true")["Id"]
    assert [c["Id"] for c in dclient.containers(all=True, filters={"id": cid, "is-task": "false"})] == [cid]
    assert dclient.containers(all=True, filters={"id": cid, "is-task": "true"}) == []


def test_image_prune_until_and_not_label(dclient):
    """Dangling images from commits: until before them selects neither, label! keeps the
    labelled one, until after them selects it."""
    cid = dclient.create_container("busybox", "true")["Id"]
    keep_me = dclient.commit(cid, changes=["LABEL keep=yes"])["Id"]
    newer = dclient.commit(cid, changes=["LABEL other=1"])["Id"]
    cut_off = int(time.time()) - 60
    try:
        report = dclient.prune_images(filters={"label!": "keep=yes", "until": str(cut_off)})
        assert not {keep_me, newer} & {d.get("Deleted") for d in report["ImagesDeleted"] or []}
        report = dclient.prune_images(filters={"label!": "keep=yes"})
        deleted = {d.get("Deleted") for d in report["ImagesDeleted"] or []}
        assert newer in deleted and keep_me not in deleted
        report = dclient.prune_images(filters={"label": "keep", "until": str(int(time.time()) + 5)})
        assert keep_me in {d.get("Deleted") for d in report["ImagesDeleted"] or []}
    finally:
        for image in (keep_me, newer):
            try:
                dclient.remove_image(image, force=True)
            except Exception:  # noqa: BLE001 - pruned already
                pass

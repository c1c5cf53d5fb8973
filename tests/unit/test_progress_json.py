"""Docker's JSON progress messages of pull and push, from the typed steps."""

from engine.api._progress import progress_message
from engine.images import Progress, Pushed


def test_image_layer_transfer_and_aux_messages():
    assert progress_message(Progress("Digest: sha256:ab")) == {"status": "Digest: sha256:ab"}
    assert progress_message(Progress("Pulling from library/x", "1.0")) == {"status": "Pulling from library/x", "id": "1.0"}
    assert progress_message(Progress("Waiting", "abc", layer=True)) == {"status": "Waiting", "progressDetail": {},
                                                                        "id": "abc"}
    assert progress_message(Progress("Extracting", "abc", layer=True, current=5, total=5)) == {
        "status": "Extracting", "progressDetail": {"current": 5, "total": 5}, "id": "abc"}
    down = progress_message(Progress("Downloading", "abc", layer=True, current=1500, total=3000, bar=True))
    assert down["progressDetail"] == {"current": 1500, "total": 3000}
    assert down["progress"] == "[" + "=" * 24 + ">" + " " * 25 + "] 1.5kB/3kB"
    assert progress_message(Pushed("1.0", "sha256:cd", 527, "sha256:ef")) == {
        "progressDetail": {}, "aux": {"Tag": "1.0", "Digest": "sha256:cd", "Size": 527}}

"""Docker's Volume JSON is written by engine.api.volumes from the typed Volume and the
driver's VolumeStatus."""

from engine.api.volumes import volume_shape
from engine.volumes import Volume, VolumeStatus


def test_volume_json_shows_the_drivers_status_or_its_error():
    volume = Volume(name="v1", driver="plug", created_at="2024-01-01T00:00:00Z", labels={"a": "1"})
    shape = volume_shape(volume, VolumeStatus(mountpoint="/mnt/v1", status={"size": "1G"}))
    assert shape == {"CreatedAt": "2024-01-01T00:00:00Z", "Driver": "plug", "Labels": {"a": "1"},
                     "Mountpoint": "/mnt/v1", "Name": "v1", "Options": None, "Scope": "local",
                     "Status": {"size": "1G"}}
    assert volume_shape(volume, VolumeStatus(error="plugin gone"))["Status"] == {"Error": "plugin gone"}
    assert "Status" not in volume_shape(volume, VolumeStatus(mountpoint="/x"))

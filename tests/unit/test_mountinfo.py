"""engine.runtime.mountinfo: escaped paths come back as they are on disk."""

from engine.runtime import mountinfo

TEXT = (
    "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
    "40 22 0:5 / /srv/my\\040data rw - tmpfs tmpfs rw\n"
    "41 40 0:6 / /srv/my\\040data/sub\\134dir rw - tmpfs tmpfs rw\n"
    "42 22 0:7 / /srv/other rw - tmpfs tmpfs rw\n"
)


def test_mount_points_unescape_and_filter_strictly_below():
    assert mountinfo.mount_points(text=TEXT) == ["/", "/srv/my data", "/srv/my data/sub\\dir", "/srv/other"]
    assert mountinfo.mount_points(below="/srv/my data", text=TEXT) == ["/srv/my data/sub\\dir"]
    assert mountinfo.mount_points(below="/srv/my", text=TEXT) == []

"""Docker's `local` volume driver: <data_root>/volumes/<name>/_data, and with options
(`type`, `device`, `o`) a mount(2) of that device onto _data while any container uses it,
e.g. `--opt type=tmpfs --opt device=tmpfs --opt o=size=64m`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import trio

from engine import errors
from engine.disk import directory_size
from engine.runtime import mountinfo

VALID_OPTS = ("type", "device", "o")


class LocalDriver:
    name = "local"

    def __init__(self, context) -> None:
        self.root = context.root
        self._refs: dict[str, set[str]] = {}  # name → mount ids
        self._mounted: set[str] = set()  # names whose device we mounted on _data

    def _dir(self, name: str) -> str:
        return os.path.join(self.root, name)

    def _data(self, name: str) -> str:
        return os.path.join(self.root, name, "_data")

    def _opts(self, name: str) -> dict:
        try:
            with open(os.path.join(self._dir(name), "opts.json")) as f:
                return json.load(f)
        except (OSError, ValueError):
            return {}

    @staticmethod
    def validate(options: dict) -> None:
        for key in options or {}:
            if key == "size":
                raise errors.InvalidParameter("quota size requested but no quota support")
            if key not in VALID_OPTS:
                raise errors.InvalidParameter(f'invalid option: "{key}"')
        if options and not options.get("type") and options.get("device"):
            raise errors.InvalidParameter('missing required option: "type"')
        if options and options.get("type") and not options.get("device"):
            raise errors.InvalidParameter('missing required option: "device"')

    async def create(self, name: str, options: dict) -> None:
        self.validate(options)

        def make():
            os.makedirs(self.root, mode=0o701, exist_ok=True)
            os.makedirs(self._dir(name), mode=0o701, exist_ok=True)
            os.makedirs(self._data(name), mode=0o755, exist_ok=True)
            if options:
                tmp = os.path.join(self._dir(name), "opts.json.tmp")
                with open(tmp, "w") as f:
                    json.dump(options, f)
                os.replace(tmp, os.path.join(self._dir(name), "opts.json"))

        await trio.to_thread.run_sync(make)

    async def remove(self, name: str) -> None:
        if self._refs.get(name):
            raise errors.Conflict(f"remove {name}: volume is in use")

        def rm():
            if mountinfo.is_mount_point(self._data(name)):
                subprocess.run(["umount", "-l", self._data(name)], check=False, capture_output=True)
            shutil.rmtree(self._dir(name), ignore_errors=True)

        await trio.to_thread.run_sync(rm)
        self._mounted.discard(name)

    async def mount(self, name: str, mount_id: str) -> str:
        refs = self._refs.setdefault(name, set())
        if not os.path.isdir(self._data(name)):
            raise errors.NotFound(f"get {name}: no such volume")
        opts = self._opts(name)
        if opts.get("type") and name not in self._mounted:
            await trio.to_thread.run_sync(self._mount_device, name, opts)
            self._mounted.add(name)
        refs.add(mount_id)
        return self._data(name)

    def _mount_device(self, name: str, opts: dict) -> None:
        target = self._data(name)
        if mountinfo.is_mount_point(target):  # left by a daemon that was killed
            subprocess.run(["umount", "-l", target], check=False, capture_output=True)
        argv = ["mount", "-t", opts["type"]]
        if opts.get("o"):
            argv += ["-o", opts["o"]]
        argv += [opts.get("device") or opts["type"], target]
        done = subprocess.run(argv, capture_output=True, text=True)
        if done.returncode != 0:
            # mount(8)'s reason on one line, without its pointer to dmesg
            reason = " ".join(line.strip() for line in done.stderr.splitlines() if "dmesg(1)" not in line)
            raise errors.SystemError_(
                f"error while mounting volume '{target}': failed to mount local volume: "
                f"mount {opts.get('device')}:{target}, data: {opts.get('o', '')}: {reason}")

    async def unmount(self, name: str, mount_id: str) -> None:
        refs = self._refs.get(name)
        if refs is not None:
            refs.discard(mount_id)
            if refs:
                return
            del self._refs[name]
        if name in self._mounted:
            self._mounted.discard(name)
            target = self._data(name)
            await trio.to_thread.run_sync(lambda: subprocess.run(["umount", "-l", target], check=False,
                                                                 capture_output=True))

    async def path(self, name: str) -> str:
        return self._data(name)

    async def get(self, name: str) -> dict | None:
        if not os.path.isdir(self._data(name)):
            return None
        return {"Name": name, "Mountpoint": self._data(name)}

    async def list(self) -> list[dict]:
        def scan():
            if not os.path.isdir(self.root):
                return []
            return [{"Name": n, "Mountpoint": self._data(n)} for n in sorted(os.listdir(self.root))
                    if not n.startswith("_") and os.path.isdir(self._data(n))]

        return await trio.to_thread.run_sync(scan)

    async def capabilities(self) -> dict:
        return {"Scope": "local"}

    def usage(self, name: str) -> int:
        """Bytes under _data (sync: call in a thread)."""
        return directory_size(self._data(name))

    async def restore(self) -> None:
        """A killed daemon left its device mounts on _data: nothing uses them now."""

        def sweep():
            try:
                stale = mountinfo.mount_points(below=self.root)
            except OSError:
                return
            for target in reversed(stale):
                subprocess.run(["umount", "-l", target], check=False, capture_output=True)

        await trio.to_thread.run_sync(sweep)

    async def release(self) -> None:
        for name in list(self._mounted):
            target = self._data(name)
            await trio.to_thread.run_sync(lambda: subprocess.run(["umount", "-l", target], check=False,
                                                                 capture_output=True))
        self._mounted.clear()
        self._refs.clear()

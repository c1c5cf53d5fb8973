"""One nftables table per daemon, replaced atomically from a generated ruleset.
Nothing else on the host firewall is touched; the table is deleted at shutdown.

The ruleset is applied in-process through libnftables (ctypes, one context per table guarded by
a threading.Lock, used from trio worker threads); the whole buffer is one transaction, exactly as
with `nft -f`. If the library cannot be loaded, the `nft` binary is run as a subprocess instead."""

from __future__ import annotations

import ctypes
import logging
import os
import threading

import attrs
import trio

log = logging.getLogger(__name__)

_LIBNAME = "libnftables.so.1"
_NFT_CTX_DEFAULT = 0
_lib_lock = threading.Lock()
_lib: ctypes.CDLL | None = None
_lib_error: str | None = None


def _load_lib() -> ctypes.CDLL | None:
    """libnftables with its prototypes declared, or None (reason logged once) if unavailable."""
    global _lib, _lib_error
    with _lib_lock:
        if _lib is not None or _lib_error is not None:
            return _lib
        try:
            lib = ctypes.CDLL(_LIBNAME)
            lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
            lib.nft_ctx_new.restype = ctypes.c_void_p
            lib.nft_ctx_free.argtypes = [ctypes.c_void_p]
            lib.nft_ctx_free.restype = None
            for fn in (lib.nft_ctx_buffer_output, lib.nft_ctx_buffer_error):
                fn.argtypes = [ctypes.c_void_p]
                fn.restype = ctypes.c_int
            for fn in (lib.nft_ctx_get_output_buffer, lib.nft_ctx_get_error_buffer):
                fn.argtypes = [ctypes.c_void_p]
                fn.restype = ctypes.c_char_p
            for fn in (lib.nft_run_cmd_from_buffer, lib.nft_run_cmd_from_filename):
                fn.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
                fn.restype = ctypes.c_int
        except (OSError, AttributeError) as exc:
            _lib_error = str(exc)
            log.info("libnftables unavailable (%s); falling back to the nft binary", exc)
            return None
        _lib = lib
        return lib


class NftError(Exception):
    pass


class _Context:
    """One libnftables context; every call holds `lock` (contexts are not thread-safe)."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        self.lib = lib
        self.lock = threading.Lock()
        self.ctx: int | None = None

    def _ensure(self) -> int:
        if self.ctx is None:
            ctx = self.lib.nft_ctx_new(_NFT_CTX_DEFAULT)
            if not ctx:
                raise NftError("nft_ctx_new failed")
            if self.lib.nft_ctx_buffer_output(ctx) != 0 or self.lib.nft_ctx_buffer_error(ctx) != 0:
                self.lib.nft_ctx_free(ctx)
                raise NftError("cannot buffer libnftables output")
            self.ctx = ctx
        return self.ctx

    def run(self, text: str) -> None:
        """Run `text` as one nft transaction; NftError carries nft's own error text."""
        with self.lock:
            ctx = self._ensure()
            rc = self.lib.nft_run_cmd_from_buffer(ctx, text.encode())
            self._raise_for(ctx, rc, None)

    def run_file(self, text: str) -> None:
        """Like `nft -f`: the ruleset is read as a file (from a memfd), so it is one transaction and
        error messages point at the right line (libnftables 1.0.x buffer errors always echo line 1)."""
        fd = os.memfd_create("pyengine-nft", os.MFD_CLOEXEC)
        try:
            data = text.encode()
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            path = f"/proc/self/fd/{fd}"
            with self.lock:
                ctx = self._ensure()
                rc = self.lib.nft_run_cmd_from_filename(ctx, path.encode())
                self._raise_for(ctx, rc, path)
        finally:
            os.close(fd)

    def _raise_for(self, ctx: int, rc: int, path: str | None) -> None:
        # reading a buffer rewinds it, so each command's messages start empty
        self.lib.nft_ctx_get_output_buffer(ctx)
        err = (self.lib.nft_ctx_get_error_buffer(ctx) or b"").decode(errors="replace").strip()
        if rc != 0:
            if path is not None:
                err = err.replace(path + ":", "ruleset:")
            raise NftError(err or f"libnftables failed ({rc})")

    def free(self) -> None:
        with self.lock:
            if self.ctx is not None:
                self.lib.nft_ctx_free(self.ctx)
                self.ctx = None


@attrs.define
class NatNetwork:
    bridge: str
    subnet: str
    internal: bool = False
    masquerade: bool = True


@attrs.define
class Dnat:
    proto: str  # tcp | udp
    host_ip: str  # "" or "0.0.0.0" = every local address
    host_port: int
    container_ip: str
    container_port: int


def render(table: str, networks: list[NatNetwork], dnats: list[Dnat]) -> str:
    lines = [f"table inet {table} {{}}", f"delete table inet {table}", f"table inet {table} {{"]
    lines += ["  chain publish {"]
    for d in dnats:
        if d.host_ip.startswith("127."):
            continue  # loopback is served by the userland proxy
        match = "" if d.host_ip in ("", "0.0.0.0") else f"ip daddr {d.host_ip} "
        lines.append(f"    {match}{d.proto} dport {d.host_port} dnat ip to {d.container_ip}:{d.container_port}")
    lines += ["  }"]
    lines += [
        "  chain prerouting {",
        "    type nat hook prerouting priority dstnat; policy accept;",
        "    fib daddr type local jump publish",
        "  }",
        "  chain postrouting {",
        "    type nat hook postrouting priority srcnat; policy accept;",
    ]
    for n in networks:
        if n.masquerade and not n.internal:
            lines.append(f'    ip saddr {n.subnet} oifname != "{n.bridge}" masquerade')
    lines += ["  }", "  chain forward {", "    type filter hook forward priority filter; policy accept;"]
    for n in networks:
        if n.internal:
            lines.append(f'    iifname "{n.bridge}" oifname != "{n.bridge}" drop')
            lines.append(f'    oifname "{n.bridge}" iifname != "{n.bridge}" drop')
    lines += ["  }", "}", ""]
    return "\n".join(lines)


class NftTable:
    def __init__(self, name: str, *, use_library: bool = True) -> None:
        self.name = name
        self._lock = trio.Lock()  # keeps applies in call order
        lib = _load_lib() if use_library else None
        self._ctx = _Context(lib) if lib is not None else None

    @property
    def in_process(self) -> bool:
        return self._ctx is not None

    async def apply(self, networks: list[NatNetwork], dnats: list[Dnat]) -> None:
        text = render(self.name, networks, dnats)
        async with self._lock:
            if self._ctx is not None:
                try:
                    # not abandoned on cancel: the transaction either fully applies or not at all
                    await trio.to_thread.run_sync(self._ctx.run_file, text)
                    return
                except NftError as exc:
                    message = str(exc)
            else:
                result = await trio.run_process(["nft", "-f", "-"], stdin=text.encode(), capture_stdout=True,
                                                capture_stderr=True, check=False)
                if result.returncode == 0:
                    return
                message = result.stderr.decode(errors="replace").strip()
        from engine import errors

        raise errors.SystemError_(f"nftables: {message}")

    def _delete_in_process(self) -> None:
        assert self._ctx is not None
        try:
            self._ctx.run(f"delete table inet {self.name}")
        except NftError as exc:
            log.debug("deleting nft table %s: %s", self.name, exc)
        finally:
            self._ctx.free()  # recreated lazily if the table is applied again

    async def delete(self) -> None:
        async with self._lock:
            if self._ctx is not None:
                await trio.to_thread.run_sync(self._delete_in_process)
                return
            await trio.run_process(["nft", "delete", "table", "inet", self.name], capture_stdout=True,
                                   capture_stderr=True, check=False)

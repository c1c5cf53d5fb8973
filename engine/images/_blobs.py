"""blobs/sha256/<hex> under the image root: registry blobs (compressed layers, configs,
manifests) kept by digest for pushes, saves and pulls of the same layer."""

from __future__ import annotations

import hashlib
import os

from engine.errors import InvalidParameter, NotFound

from ._layers import _hex, _is_hex64


class BlobStore:
    """blobs/sha256/<hex>: content-addressed, verified on write, temp name then rename."""

    def __init__(self, root: str):
        self.root = os.path.join(root, "sha256")
        os.makedirs(self.root, exist_ok=True)

    def path(self, digest: str) -> str:
        h = _hex(digest)
        if not _is_hex64(h):
            raise InvalidParameter(f"invalid digest {digest!r}")
        return os.path.join(self.root, h)

    def has(self, digest: str) -> bool:
        return os.path.exists(self.path(digest))

    def put(self, data: bytes, expected: str | None = None) -> str:
        import io

        return self.put_stream(io.BytesIO(data), expected)

    def put_stream(self, fileobj, expected: str | None = None) -> str:
        """Copy a stream in; raises InvalidParameter if `expected` does not match."""
        sha = hashlib.sha256()
        tmp = os.path.join(self.root, f".tmp-{os.urandom(8).hex()}")
        try:
            with open(tmp, "wb") as out:
                while chunk := fileobj.read(1 << 20):
                    sha.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            digest = "sha256:" + sha.hexdigest()
            if expected is not None and expected != digest:
                raise InvalidParameter(f"digest mismatch: expected {expected}, got {digest}")
            os.replace(tmp, self.path(digest))
            return digest
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def open(self, digest: str):
        try:
            return open(self.path(digest), "rb")
        except FileNotFoundError:
            raise NotFound(f"blob {digest} not found") from None

    def delete(self, digest: str) -> None:
        try:
            os.unlink(self.path(digest))
        except FileNotFoundError:
            pass

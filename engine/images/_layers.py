"""Layers of the image store: unpacked layer directories with their meta (diff id, chain id,
parent, size, the compressed registry blobs known for them), and the helpers every store file
uses (ids, atomic JSON writes)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading

from engine.errors import NotFound, SystemError_

from ._unpack import unpack_layer

_HEX64 = set("0123456789abcdef")


def _is_hex64(s: str) -> bool:
    return len(s) == 64 and set(s) <= _HEX64


def _hex(digest: str) -> str:
    return digest.split(":", 1)[1] if ":" in digest else digest


def chain_ids(diff_ids: list[str]) -> list[str]:
    """OCI ChainID for every prefix of the layer list."""
    out: list[str] = []
    for d in diff_ids:
        if not out:
            out.append(d)
        else:
            out.append("sha256:" + hashlib.sha256(f"{out[-1]} {d}".encode()).hexdigest())
    return out


def atomic_write(path: str, data: bytes) -> None:
    tmp = f"{path}.tmp-{os.getpid()}-{threading.get_ident()}"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _dumps(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


class LayerStore:
    """ImageStore's layers (mixed into it): commit, look up, and give out layer tars and
    compressed blobs for save and push."""

    def _layer_size(self, chain_id: str) -> int:
        """A layer's size, read once (a chain id names the same content forever)."""
        sizes = self._layer_sizes
        size = sizes.get(chain_id)
        if size is None:
            meta = self._layer_meta(chain_id)
            size = meta.get("size", 0)
            if meta:
                sizes[chain_id] = size
        return size

    def layer_usage(self, images) -> tuple[dict[str, int], int]:
        """dockerd's disk usage of `images`: per image id, the size of its layers that another
        of them uses too (SharedSize), and the size of all their layers counted once."""
        refs: dict[str, int] = {}
        for image in images:
            for chain in set(image.chain_ids):
                refs[chain] = refs.get(chain, 0) + 1
        shared = {image.id: sum(self._layer_size(c) for c in image.chain_ids if refs[c] > 1) for image in images}
        return shared, sum(self._layer_size(c) for c in refs)

    def _layer_meta(self, chain_id: str) -> dict:
        try:
            with open(os.path.join(self.layers_dir, _hex(chain_id), "meta.json")) as f:
                return json.load(f)
        except FileNotFoundError:
            return {}

    def _commit_layer(self, source, parent_chain: str | None, privileged: bool,
                      keep_tar: bool = True, compressed: dict | None = None) -> tuple[str, str]:
        """Unpack one layer on top of parent_chain. Returns (diff_id, chain_id).

        keep_tar: the uncompressed tar is kept as blob <diff_id> (save/push need the exact
        bytes); `compressed` ({"digest", "mediaType", "size", "sources"}) records the registry
        blob this layer came from instead (pulls keep that blob)."""
        wrap = os.path.join(self.layers_dir, "tmp-" + os.urandom(8).hex())
        os.mkdir(wrap, 0o700)
        tee = tee_path = None
        try:
            if keep_tar:
                tee_path = os.path.join(self.blobs.root, f".tmp-{os.urandom(8).hex()}")
                tee = open(tee_path, "wb")
            tmpdiff, res = unpack_layer(source, wrap, privileged=privileged, tee=tee)
            if tee is not None:
                tee.close()
                tee = None
                if not self.blobs.has(res.diff_id):
                    os.replace(tee_path, self.blobs.path(res.diff_id))
            os.rename(tmpdiff, os.path.join(wrap, "diff"))
            chain = res.diff_id if parent_chain is None else chain_ids([parent_chain, res.diff_id])[1]
            meta = {"diff_id": res.diff_id, "chain_id": chain, "parent": parent_chain or "", "size": res.size, "tar_size": res.tar_size}
            if compressed:
                meta["compressed"] = [compressed]
            atomic_write(os.path.join(wrap, "meta.json"), _dumps(meta))
            os.chmod(wrap, 0o755)
            final = os.path.join(self.layers_dir, _hex(chain))
            try:
                os.rename(wrap, final)
            except OSError:
                if not os.path.isdir(os.path.join(final, "diff")):
                    raise
                shutil.rmtree(wrap, ignore_errors=True)  # same layer already there
                if compressed:
                    self.add_layer_blob(chain, compressed)
            return res.diff_id, chain
        except BaseException:
            shutil.rmtree(wrap, ignore_errors=True)
            raise
        finally:
            if tee is not None:
                tee.close()
            if tee_path and os.path.exists(tee_path):
                os.unlink(tee_path)

    def commit_layer(self, tar_path: str, parent_chain: str | None) -> tuple[str, str]:
        """A layer tar (a diff with AUFS whiteouts, e.g. from tar_directory of an overlay
        upper dir) on top of parent_chain. Returns (diff_id, chain_id); the tar is kept."""
        return self._commit_layer(tar_path, parent_chain, True)

    def has_layer(self, chain_id: str) -> bool:
        return os.path.isdir(os.path.join(self.layers_dir, _hex(chain_id), "diff"))

    def layer_meta(self, chain_id: str) -> dict:
        return self._layer_meta(chain_id)

    def add_layer_blob(self, chain_id: str, blob: dict) -> None:
        """Remember a compressed registry blob of this layer (and the repositories that have it)."""
        with self._lock:
            path = os.path.join(self.layers_dir, _hex(chain_id), "meta.json")
            meta = self._layer_meta(chain_id)
            if not meta:
                return
            known = meta.setdefault("compressed", [])
            for b in known:
                if b["digest"] == blob["digest"]:
                    b["sources"] = sorted(set(b.get("sources", [])) | set(blob.get("sources", [])))
                    break
            else:
                known.append(dict(blob))
            atomic_write(path, _dumps(meta))

    def open_layer_tar(self, chain_id: str):
        """The layer's uncompressed tar (its sha256 is the diff id), as a binary file."""
        from ._unpack import decompressed

        meta = self._layer_meta(chain_id)
        if not meta:
            raise NotFound(f"layer {chain_id} not found")
        diff_id = meta["diff_id"]
        if self.blobs.has(diff_id):
            return self.blobs.open(diff_id)
        for b in meta.get("compressed", []):
            if self.blobs.has(b["digest"]):
                return decompressed(self.blobs.open(b["digest"]))
        # Neither kept (a store from before blobs were kept): rebuild from the directory and
        # accept it only if it reproduces the diff id.
        from ._archive import tar_directory

        tmp = os.path.join(self.blobs.root, f".tmp-{os.urandom(8).hex()}")
        try:
            with open(tmp, "wb") as out:
                tar_directory(os.path.join(self.layers_dir, _hex(chain_id), "diff"), out)
            with open(tmp, "rb") as f:
                got = self.blobs.put_stream(f)
            if got != diff_id:
                self.blobs.delete(got)
                raise SystemError_(f"layer {chain_id}: its tar is not kept and cannot be reproduced")
            return self.blobs.open(diff_id)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def compressed_layer(self, chain_id: str) -> dict:
        """A gzip blob for this layer, made (deterministically) if none is known.
        Returns {"digest", "mediaType", "size", "sources"}."""
        import gzip

        for b in self._layer_meta(chain_id).get("compressed", []):
            if self.blobs.has(b["digest"]):
                return b
        tmp = os.path.join(self.blobs.root, f".tmp-{os.urandom(8).hex()}")
        try:
            with self.open_layer_tar(chain_id) as src, open(tmp, "wb") as raw:
                with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, compresslevel=6) as gz:
                    shutil.copyfileobj(src, gz, 1 << 20)
            size = os.path.getsize(tmp)
            with open(tmp, "rb") as f:
                digest = self.blobs.put_stream(f)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        blob = {"digest": digest, "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                "size": size, "sources": []}
        self.add_layer_blob(chain_id, blob)
        for b in self._layer_meta(chain_id).get("compressed", []):
            if b["digest"] == digest:
                return b  # with the sources already known for that digest
        return blob

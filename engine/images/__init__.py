"""Image store: content-addressed layers and configs under <data_root>/image/."""

from ._reference import Reference, normalize_reference, parse_reference
from ._store import BlobStore, Image, ImageStore, chain_ids
from ._unpack import unpack_layer

__all__ = [
    "BlobStore", "Image", "ImageStore", "Reference", "chain_ids", "normalize_reference",
    "parse_reference", "unpack_layer",
]

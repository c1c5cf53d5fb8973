"""Image store: content-addressed layers and configs under <data_root>/image/."""

from ._archive import commit as commit_container
from ._archive import load as load_archive
from ._archive import save as save_archive
from ._archive import tar_directory
from ._blobs import BlobStore
from ._bootstrap import debootstrap_command, remove_tree_with_mounts
from ._lookup import NOT_PLAIN, lookup as lookup_in_layers
from ._progress import Progress, Pushed
from ._reference import Reference, normalize_reference, parse_reference
from ._registry import INDEX_TYPES, Registry, RegistryError, RegistryPolicy, decode_auth_header, download
from ._runconfig import ImageHealthcheck, RunConfig
from ._search import SearchResult, search_index
from ._store import Deleted, Image, ImageStore, Untagged, chain_ids
from ._unpack import unpack_layer

__all__ = [
    "INDEX_TYPES", "NOT_PLAIN", "BlobStore", "Deleted", "Image", "ImageHealthcheck", "ImageStore", "Progress", "Pushed",
    "Reference", "Registry", "RegistryError", "RegistryPolicy", "RunConfig", "SearchResult", "search_index",
    "chain_ids", "commit_container", "debootstrap_command", "decode_auth_header", "download", "load_archive", "lookup_in_layers",
    "normalize_reference", "parse_reference", "remove_tree_with_mounts", "save_archive",
    "tar_directory", "Untagged", "unpack_layer",
]

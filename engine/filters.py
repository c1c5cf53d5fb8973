"""Docker's filter values that the API's list filters and the managers' prune filters share."""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["label_matches"]


def label_matches(labels: Mapping[str, str], wanted: str) -> bool:
    """A `label` filter's value: "key" (the label is set) or "key=value"."""
    key, eq, value = wanted.partition("=")
    return key in labels and (not eq or labels[key] == value)

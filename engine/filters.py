"""Docker's filter values that the API's list filters and the managers' prune filters share."""

from __future__ import annotations

from collections.abc import Mapping

import attrs

__all__ = ["label_matches", "PruneFilters"]


def label_matches(labels: Mapping[str, str], wanted: str) -> bool:
    """A `label` filter's value: "key" (the label is set) or "key=value"."""
    key, eq, value = wanted.partition("=")
    return key in labels and (not eq or labels[key] == value)


@attrs.frozen
class PruneFilters:
    """A prune's until / label / label! filters, as dockerd applies them to containers, images
    and networks: created before `until_ns`, every one of `labels` matches, and not every one
    of `not_labels` does."""

    until_ns: int = 0  # 0: no bound
    labels: tuple[str, ...] = ()  # "key" or "key=value"
    not_labels: tuple[str, ...] = ()

    def selects(self, created_ns: int, labels: Mapping[str, str]) -> bool:
        if self.until_ns and not created_ns < self.until_ns:
            return False
        if not all(label_matches(labels, v) for v in self.labels):
            return False
        return not (self.not_labels and all(label_matches(labels, v) for v in self.not_labels))

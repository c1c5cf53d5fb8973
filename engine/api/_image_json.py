"""Docker's JSON for images (inspect and /images/json items), made from the store's records."""

from __future__ import annotations

_CONTAINER_CONFIG_DEFAULTS = {
    "Hostname": "", "Domainname": "", "User": "", "AttachStdin": False, "AttachStdout": False,
    "AttachStderr": False, "Tty": False, "OpenStdin": False, "StdinOnce": False, "Env": None,
    "Cmd": None, "Image": "", "Volumes": None, "WorkingDir": "", "Entrypoint": None,
    "OnBuild": None, "Labels": None,
}


def full_container_config(cfg: dict | None) -> dict:
    out = dict(_CONTAINER_CONFIG_DEFAULTS)
    out.update(cfg or {})
    return out


def image_inspect(store, image) -> dict:
    """GET /images/{name}/json."""
    cfg = image.config
    top = store.layer_dirs(image)
    graph: dict = {}
    if top:
        graph["UpperDir"] = top[0]
        if len(top) > 1:
            graph["LowerDir"] = ":".join(top[1:])
    return {
        "Id": image.id,
        "RepoTags": image.repo_tags,
        "RepoDigests": image.repo_digests,
        "Parent": image.parent,
        "Comment": cfg.get("comment", ""),
        "Created": image.created,
        "Container": cfg.get("container", ""),
        "ContainerConfig": full_container_config(cfg.get("container_config")),
        "DockerVersion": cfg.get("docker_version", ""),
        "Author": cfg.get("author", ""),
        "Config": full_container_config(cfg.get("config")),
        "Architecture": cfg.get("architecture", ""),
        **({"Variant": cfg["variant"]} if cfg.get("variant") else {}),
        "Os": cfg.get("os", "linux"),
        "Size": image.size,
        "VirtualSize": image.size,
        "GraphDriver": {"Name": "overlay2", "Data": graph},
        "RootFS": {"Type": "layers", "Layers": list(image.diff_ids)},
        "Metadata": {"LastTagTime": store.last_tag_time(image)},
    }


def image_summary(image, containers: int = -1) -> dict:
    """/images/json item (Docker 20.10 shows <none> placeholders for dangling images)."""
    return {
        "Containers": containers,
        "Created": image.created_unix,
        "Id": image.id,
        "Labels": (image.container_config.get("Labels") or None),
        "ParentId": image.parent,
        "RepoDigests": image.repo_digests or ([] if image.repo_tags else ["<none>@<none>"]),
        "RepoTags": image.repo_tags or ["<none>:<none>"],
        "SharedSize": -1,
        "Size": image.size,
        "VirtualSize": image.size,
    }

"""The Node majors and package managers the sandbox image carries side by side.

One image holds every offered Node under ``/opt/kiln/node/<major>`` and every pinned
package manager under ``/opt/kiln/managers/<manager>``; a step picks its pair by ``PATH``
(:func:`step_path`). Measured against one image per major (docs/ENVIRONMENTS.md): the
imported images share no layers, so per-major images repeat the ~120 MB Debian base, npm
and the managers; a container starts as fast from either.

What the image carries is written into its labels (:func:`labels`) and read back by the
API, the doctor and the pipeline (:func:`offer_from_labels`), so the offer always states
what is really inside the image a worker uses.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import docker.errors

from orchestrator.errors import Unavailable
from orchestrator.project.environment import DEFAULT_NODE_MAJOR, Manager, Offer

NODE_MAJORS = (20, 22, 24, 26)
#: Manager pins of the image: (npm package, exact version). npm itself comes with Node's
#: default line (layout.NPM_MAJOR) and is resolved when the image is built.
MANAGER_PINS: dict[Manager, tuple[str, str]] = {
    Manager.PNPM: ("pnpm", "10.34.9"),
    Manager.YARN_CLASSIC: ("yarn", "1.22.22"),
    Manager.YARN_BERRY: ("@yarnpkg/cli-dist", "4.18.1"),
    Manager.BUN: ("@oven/bun-linux-x64", "1.4.5"),
}
NODE_ROOT = "/opt/kiln/node"
MANAGERS_ROOT = "/opt/kiln/managers"
BASE_PATH = "/usr/local/bin:/usr/bin:/bin"

#: Where each manager's program lies inside its package, and the names it is called by.
MANAGER_BINS: dict[Manager, dict[str, str]] = {
    Manager.NPM: {},  # npm and npx live in /usr/local/bin for every major
    Manager.PNPM: {"pnpm": "bin/pnpm.cjs", "pnpx": "bin/pnpx.cjs"},
    Manager.YARN_CLASSIC: {"yarn": "bin/yarn.js", "yarnpkg": "bin/yarn.js"},
    Manager.YARN_BERRY: {"yarn": "bin/yarn.js", "yarnpkg": "bin/yarn.js"},
    Manager.BUN: {"bun": "bin/bun", "bunx": "bin/bun"},
}

LABEL_NODE_VERSIONS = "kiln.node.versions"
LABEL_MANAGERS = "kiln.managers"


def node_dir(major: int) -> str:
    """The folder one Node major is installed in (its binary is ``bin/node`` there)."""
    return f"{NODE_ROOT}/{major}"


def manager_dir(manager: Manager) -> str:
    """The folder of one pinned manager: ``pkg/`` (the npm package) and ``bin/`` (links)."""
    return f"{MANAGERS_ROOT}/{manager.value}"


def step_path(major: int, manager: Manager, extra: str | None = None) -> str:
    """``PATH`` of a container that runs Node ``major`` with ``manager`` (and ``extra``
    first: the folder of a manager version fetched for ``packageManager``)."""
    parts = [extra] if extra else []
    parts += [f"{node_dir(major)}/bin", f"{manager_dir(manager)}/bin", BASE_PATH]
    return ":".join(parts)


@dataclass(frozen=True)
class Carried:
    """What one built image holds: Node full versions per major and manager versions."""

    node: Mapping[int, str]
    managers: Mapping[Manager, str]


def labels(carried: Carried) -> dict[str, str]:
    """The image labels that record what it carries."""
    return {
        LABEL_NODE_VERSIONS: ",".join(f"{m}={v}" for m, v in sorted(carried.node.items())),
        LABEL_MANAGERS: ",".join(f"{m.value}={v}" for m, v in sorted(carried.managers.items())),
    }


def offer_from_labels(image_labels: Mapping[str, str], fallback_node: str = "") -> Offer:
    """What an image offers, from its labels (an older image offers its one Node and npm)."""
    node: dict[int, str] = {}
    for item in image_labels.get(LABEL_NODE_VERSIONS, "").split(","):
        major, _, version = item.partition("=")
        if major.isdigit() and version:
            node[int(major)] = version
    managers: dict[Manager, str] = {}
    for item in image_labels.get(LABEL_MANAGERS, "").split(","):
        name, _, version = item.partition("=")
        if name in Manager._value2member_map_ and version:
            managers[Manager(name)] = version
    if not node:
        single = image_labels.get("kiln.node.version") or fallback_node
        if single and single.split(".")[0].isdigit():
            node[int(single.split(".")[0])] = single
    managers.setdefault(Manager.NPM, "unknown")
    default = DEFAULT_NODE_MAJOR if DEFAULT_NODE_MAJOR in node else max(node, default=0)
    return Offer(node=node, managers=managers, default_major=default)


def image_offer(client: Any, image: str) -> Offer:
    """What the sandbox image ``image`` offers (Docker SDK client); Unavailable if it is missing."""
    try:
        found = client.images.get(image)
    except docker.errors.ImageNotFound as exc:
        raise Unavailable(f"sandbox image {image} is missing; run `kiln image build`") from exc
    except docker.errors.DockerException as exc:
        raise Unavailable(f"cannot inspect the sandbox image {image}: {exc}") from exc
    return offer_from_labels(found.labels or {})


def describe_offer(offer: Offer) -> list[dict[str, Any]]:
    """``GET /api/v1/environments``'s items: one per Node major, with the managers' versions."""
    managers = {
        "npm": offer.managers.get(Manager.NPM),
        "pnpm": offer.managers.get(Manager.PNPM),
        "yarn": offer.managers.get(Manager.YARN_CLASSIC),
        "yarn-berry": offer.managers.get(Manager.YARN_BERRY),
        "bun": offer.managers.get(Manager.BUN),
    }
    return [
        {
            "node": offer.node[major],
            "major": major,
            "default": major == offer.default_major,
            "package_managers": {k: v for k, v in managers.items() if v},
        }
        for major in offer.majors()
    ]

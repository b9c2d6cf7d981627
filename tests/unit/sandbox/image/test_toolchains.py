"""What the image carries, as labels and back, and the PATH that picks one pair."""

from __future__ import annotations

from orchestrator.project.environment import Manager
from orchestrator.sandbox.image.toolchains import (
    Carried,
    describe_offer,
    labels,
    offer_from_labels,
    step_path,
)

CARRIED = Carried(
    node={20: "20.20.2", 22: "22.23.5", 24: "24.22.3"},
    managers={Manager.NPM: "10.9.9", Manager.PNPM: "10.34.9", Manager.YARN_BERRY: "4.18.1"},
)


def test_labels_round_trip_to_the_offer() -> None:
    offer = offer_from_labels(labels(CARRIED))
    assert dict(offer.node) == dict(CARRIED.node)
    assert dict(offer.managers) == dict(CARRIED.managers)
    assert offer.default_major == 22


def test_an_older_single_node_image_offers_its_one_node() -> None:
    offer = offer_from_labels({"kiln.node.version": "22.12.0"})
    assert dict(offer.node) == {22: "22.12.0"} and offer.default_major == 22


def test_junk_labels_are_ignored() -> None:
    offer = offer_from_labels(
        {"kiln.node.versions": "x=1,24=,=3,26=26.1.0", "kiln.managers": "z=1"}
    )
    assert dict(offer.node) == {26: "26.1.0"} and offer.default_major == 26


def test_environments_body_per_major() -> None:
    items = describe_offer(offer_from_labels(labels(CARRIED)))
    assert [(i["major"], i["node"], i["default"]) for i in items] == [
        (20, "20.20.2", False),
        (22, "22.23.5", True),
        (24, "24.22.3", False),
    ]
    assert items[0]["package_managers"] == {
        "npm": "10.9.9",
        "pnpm": "10.34.9",
        "yarn-berry": "4.18.1",
    }


def test_step_path_puts_the_chosen_pair_first() -> None:
    assert step_path(20, Manager.BUN) == (
        "/opt/kiln/node/20/bin:/opt/kiln/managers/bun/bin:/usr/local/bin:/usr/bin:/bin"
    )

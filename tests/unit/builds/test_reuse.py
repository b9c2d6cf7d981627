"""The identical-input reuse key: which submit settings make two inputs different."""

from __future__ import annotations

from orchestrator.builds.reuse import input_digest
from orchestrator.cache.keys import input_key, source_digest
from tests.unit.builds.conftest import Kiln

FILES = {"front/package.json": b"{}", "back/package.json": b"{}"}


def test_the_app_folder_is_part_of_the_key(kiln: Kiln) -> None:
    top = input_digest(kiln.ctx, FILES)
    front = input_digest(kiln.ctx, FILES, root="front")
    back = input_digest(kiln.ctx, FILES, root="back")
    assert None not in (top, front, back)
    assert len({top, front, back}) == 3  # one tree, three different builds
    assert input_digest(kiln.ctx, FILES, root="front") == front


def test_a_project_at_the_top_keeps_the_key_it_had_before_root(kiln: Kiln) -> None:
    s = kiln.ctx.settings
    before = input_key(
        source_digest(FILES),
        image_id=kiln.ctx.sandbox.toolchain().image_id,
        settings={"registry": s.npm_registry, "node_major": s.node_major},
        env=None,
    )
    assert input_digest(kiln.ctx, FILES, root=None) == before  # earlier builds still reused

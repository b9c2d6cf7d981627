"""Unit tests for the pure parts of orchestrator.service."""

from __future__ import annotations

import pytest

from orchestrator.errors import InputError


def test_generate_without_a_model_says_where_the_key_goes() -> None:
    from types import SimpleNamespace
    from typing import cast

    from orchestrator.context import Context
    from orchestrator.errors import Unavailable
    from orchestrator.service import submit_generation
    from orchestrator.settings import Settings

    settings = Settings(_env_file=None, openai_api_key="", openai_base_url="")  # type: ignore[call-arg]
    with pytest.raises(Unavailable) as refused:
        submit_generation(cast(Context, SimpleNamespace(settings=settings)), "a todo app")
    message = refused.value.message
    assert refused.value.code == "generation_unavailable"
    for words in ("KILN_OPENAI_API_KEY", "the API and of the workers", ".env", "restart"):
        assert words in message


def test_an_unknown_status_filter_lists_the_valid_ones() -> None:
    from types import SimpleNamespace
    from typing import cast

    from orchestrator.context import Context
    from orchestrator.service import list_builds

    with pytest.raises(InputError) as refused:
        list_builds(cast(Context, SimpleNamespace()), status="done")
    assert refused.value.message == (
        "unknown status 'done'; the statuses are queued, running, succeeded, failed, cancelled"
    )

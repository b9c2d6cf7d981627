"""Unit tests for orchestrator.service.project_slug (the only pure part of the service)."""

from __future__ import annotations

import pytest

from orchestrator.errors import InputError
from orchestrator.service import PROJECT_SLUG, project_slug


@pytest.mark.parametrize(
    "requested", ["a", "0", "my-app", "app.v2", "snake_case", "a" * 63, "x-" + "9" * 61]
)
def test_explicit_slug_is_kept(requested: str) -> None:
    assert project_slug(requested, {"name": "ignored"}, "react") == requested


@pytest.mark.parametrize(
    "requested",
    [
        "",
        "My-App",
        "-app",
        ".app",
        "_app",
        "a" * 64,
        "my app",
        "a/b",
        "../etc",
        "app\x00",
        "café",
        "@acme/app",
    ],
)
def test_explicit_slug_is_refused(requested: str) -> None:
    with pytest.raises(InputError, match="project must be"):
        project_slug(requested, {}, None)


def test_explicit_slug_with_trailing_newline_is_refused() -> None:
    with pytest.raises(InputError):
        project_slug("app\n", {}, None)


@pytest.mark.parametrize(
    ("manifest", "template", "slug"),
    [
        ({"name": "my-app"}, None, "my-app"),
        ({"name": "My App"}, None, "my-app"),
        ({"name": "@acme/My App"}, "react", "my-app"),
        ({"name": "@scope/pkg.name_x"}, None, "pkg.name_x"),
        ({"name": "  --Weird!!Name__  "}, None, "weird-name"),
        ({"name": "Ünïcödé"}, None, "n-c-d"),
        ({"name": 42}, None, "42"),
        ({"name": "a" * 100}, None, "a" * 63),
        ({}, "react-ts", "react-ts"),
        ({"name": ""}, "vanilla", "vanilla"),
        ({"name": None}, "vanilla", "vanilla"),
        ({}, None, "default"),
        ({"name": "!!!"}, None, "default"),
        ({"name": "@acme/"}, None, "default"),
    ],
)
def test_slug_derived_from_package_name_then_template(
    manifest: dict[str, object], template: str | None, slug: str
) -> None:
    assert project_slug(None, manifest, template) == slug


@pytest.mark.parametrize(
    "name", ["@acme/My App", "a" * 62 + "-bc", "x" * 200, "..hidden", "Ñ", "/", "1.2.3"]
)
def test_derived_slug_is_always_a_valid_explicit_slug(name: str) -> None:
    slug = project_slug(None, {"name": name}, None)
    assert PROJECT_SLUG.fullmatch(slug)
    assert project_slug(slug, {}, None) == slug


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

"""Unit tests for orchestrator.slugs: project slugs as DNS labels, and the alias hosts."""

from __future__ import annotations

import pytest

from orchestrator.errors import InputError
from orchestrator.project.slugs import PROJECT_SLUG, alias_url, project_slug, split_host_label


@pytest.mark.parametrize("requested", ["a", "0", "my-app", "a" * 40, "x-" + "9" * 38, "a--b"])
def test_explicit_slug_is_kept(requested: str) -> None:
    assert project_slug(requested, {"name": "ignored"}, "react") == requested


@pytest.mark.parametrize(
    "requested",
    [
        "",
        "My-App",
        "-app",
        "app-",
        ".app",
        "_app",
        "app.v2",
        "snake_case",
        "a" * 41,
        "my app",
        "a/b",
        "../etc",
        "app\x00",
        "café",
        "@acme/app",
    ],
)
def test_explicit_slug_is_refused_as_invalid_project(requested: str) -> None:
    with pytest.raises(InputError, match="project must be") as caught:
        project_slug(requested, {}, None)
    assert caught.value.code == "invalid_project"
    assert caught.value.http_status == 400


def test_explicit_slug_with_trailing_newline_is_refused() -> None:
    with pytest.raises(InputError):
        project_slug("app\n", {}, None)


@pytest.mark.parametrize(
    ("manifest", "template", "slug"),
    [
        ({"name": "my-app"}, None, "my-app"),
        ({"name": "My App"}, None, "my-app"),
        ({"name": "@acme/My App"}, "react", "my-app"),
        ({"name": "@scope/pkg.name_x"}, None, "pkg-name-x"),
        ({"name": "  --Weird!!Name__  "}, None, "weird-name"),
        ({"name": "Ünïcödé"}, None, "n-c-d"),
        ({"name": 42}, None, "42"),
        ({"name": "a" * 100}, None, "a" * 40),
        ({"name": "a" * 39 + "-b"}, None, "a" * 39),
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
    "name", ["@acme/My App", "a" * 38 + "-bc", "x" * 200, "..hidden", "Ñ", "/", "1.2.3", "a.-b"]
)
def test_derived_slug_is_always_a_valid_explicit_slug(name: str) -> None:
    slug = project_slug(None, {"name": name}, None)
    assert PROJECT_SLUG.fullmatch(slug)
    assert project_slug(slug, {}, None) == slug


@pytest.mark.parametrize(
    ("label", "split"),
    [
        ("latest--shop", ("latest", "shop")),
        ("dev--shop", ("dev", "shop")),
        ("dev--my--app", ("dev", "my--app")),
        ("0123456789abcdef", None),
        ("other--shop", None),
        ("latest--", None),
        ("latest--Shop", None),
        ("latest-shop", None),
    ],
)
def test_split_host_label(label: str, split: tuple[str, str] | None) -> None:
    assert split_host_label(label) == split


def test_alias_url_follows_the_preview_url() -> None:
    url = "http://0123456789abcdef.preview.localhost:8000/"
    assert (
        alias_url(url, "0123456789abcdef", "latest", "shop")
        == "http://latest--shop.preview.localhost:8000/"
    )

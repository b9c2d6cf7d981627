from __future__ import annotations

from types import SimpleNamespace

import pytest

from orchestrator.ops.doctor import model_setup, sandbox_image
from orchestrator.sandbox.image import SOURCE_DIR, image_digest
from orchestrator.settings import Settings


def settings(**fields: str) -> Settings:
    defaults = {"openai_api_key": "", "openai_base_url": "", "openai_model": "gpt-4.1"}
    return Settings(_env_file=None, **(defaults | fields))  # type: ignore[call-arg]


def test_the_model_line_names_endpoint_and_model_and_never_the_key() -> None:
    line = model_setup(settings(openai_api_key="sk-very-secret-123"))
    assert "gpt-4.1" in line and "api.openai.com" in line and "API key set" in line
    assert "sk-very-secret" not in line


def test_a_local_endpoint_without_a_key() -> None:
    line = model_setup(settings(openai_base_url="http://127.0.0.1:11434/v1", openai_model="qwen"))
    assert line == "qwen at http://127.0.0.1:11434/v1, no API key"


def test_no_model_says_where_to_set_it() -> None:
    line = model_setup(settings())
    assert line.startswith("not configured (no API key): generation answers 503")
    assert "KILN_OPENAI_API_KEY" in line and ".env" in line and "restart" in line


def test_the_image_check_wants_every_carried_node_major_in_the_digest() -> None:
    labelled = image_digest(SOURCE_DIR, 22, [20, 24, 26])  # what ensure_image(…, 22) writes
    image = SimpleNamespace(
        labels={"kiln.image.digest": labelled, "kiln.node.version": "22.0.0"},
        attrs={"Size": 300e6},
    )
    ctx = SimpleNamespace(
        settings=Settings(_env_file=None, sandbox_image="kiln-sandbox:t", node_major=22),  # type: ignore[call-arg]
        docker=SimpleNamespace(images=SimpleNamespace(get=lambda tag: image)),
    )
    assert sandbox_image(ctx).endswith("current")  # type: ignore[arg-type]
    image.labels["kiln.image.digest"] = image_digest(SOURCE_DIR, 22)
    with pytest.raises(RuntimeError, match="out of date"):
        sandbox_image(ctx)  # type: ignore[arg-type]

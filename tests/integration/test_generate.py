"""Code generation end to end: a real Kiln stack, the real ``openai`` client, a scripted
OpenAI-compatible server over real HTTP, real Docker builds.

Most generations start from a tiny dependency-free project (``base_build``) so the
loop, not npm, is what takes the time; two start from real templates.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import BOTH_BACKENDS, WRITE_DIST, Event, Stack, node_project
from tests.integration.fake_model import FakeModel, answer, completion, rate_limited

pytestmark = [pytest.mark.integration, BOTH_BACKENDS]


def write_dist(marker: str) -> str:
    """A build.js that publishes a page showing ``marker``."""
    return (
        'const fs = require("fs");\n'
        'fs.mkdirSync("dist", { recursive: true });\n'
        f'fs.writeFileSync("dist/index.html", "<!doctype html><h1>{marker}</h1>");\n'
    )


MISSING_DEPENDENCY = 'const pad = require("left-pad-kiln");\n' + write_dist("never")
SYNTAX_ERROR = 'const fs = require("fs");\nexport const = ;\n'


def base_build(stack: Stack) -> str:
    """A finished build of a dependency-free project, to generate edits from."""
    reply = stack.client.submit_files(node_project(WRITE_DIST), project="gen-base")
    assert stack.wait(reply["id"])["status"] == "succeeded"
    return str(reply["id"])


def phases(events: list[Event]) -> list[str]:
    return [e.data["phase"] for e in events if e.event == "status"]


def generation_states(events: list[Event]) -> list[str]:
    return [e.data["state"] for e in events if e.event == "generation"]


def generation_events(events: list[Event], state: str) -> list[dict[str, object]]:
    return [e.data for e in events if e.event == "generation" and e.data["state"] == state]


def save_transcript(stack: Stack, name: str, events: list[Event]) -> Path:
    """Keep the events as a client saw them (for the README and closing notes)."""
    path = stack.var_dir / "transcripts" / f"{name}.sse"
    path.parent.mkdir(exist_ok=True)
    path.write_text(
        "".join(f"id: {e.id}\nevent: {e.event}\ndata: {json.dumps(e.data)}\n\n" for e in events)
    )
    return path


def generate(stack: Stack, **body: object) -> tuple[str, list[Event]]:
    reply = stack.client.generate(**body)  # type: ignore[arg-type]
    assert reply["status"] == "queued"
    assert reply["links"]["events"].endswith(f"/api/v1/builds/{reply['id']}/events")
    events = stack.events(reply["id"])
    assert [e.event for e in events].count("end") == 1
    assert events[-1].event == "end"
    return str(reply["id"]), events


# ------------------------------------------------------------------------ no model


def test_no_model_configured_answers_503_and_queues_nothing(stack: Stack) -> None:
    before = len(stack.client.builds(limit=500))
    with stack.http() as http:
        response = http.post("/api/v1/generate", json={"prompt": "a pomodoro timer"})
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "generation_unavailable"
    assert "KILN_OPENAI_API_KEY" in error["message"]
    assert len(stack.client.builds(limit=500)) == before


def test_every_failed_build_carries_diagnostics(stack: Stack) -> None:
    reply = stack.client.submit_files(node_project(SYNTAX_ERROR))
    end = stack.wait(reply["id"])
    assert end["status"] == "failed"
    diagnostics = end["error"]["diagnostics"]
    assert diagnostics["category"] == "syntax"
    assert diagnostics["items"][0]["file"] == "build.js"
    assert diagnostics["items"][0]["line"] == 2
    assert stack.client.build(reply["id"])["error"]["diagnostics"] == diagnostics


# ----------------------------------------------------------------- with the model


def test_prompt_builds_first_time_from_a_template(gen_stack: Stack, fake_model: FakeModel) -> None:
    page = (
        '<!doctype html><html><head><title>Pomodoro</title></head><body><div id="app">'
        "<h1>Pomodoro by the fake model</h1></div>"
        '<script type="module" src="/src/main.js"></script></body></html>'
    )
    fake_model.script(
        answer(
            {"index.html": page, "src/main.js": "console.log('tick')\n"},
            delete=["src/counter.js"],
            summary="a pomodoro page",
        )
    )
    build_id, events = generate(gen_stack, prompt="a pomodoro timer", template="vanilla")
    end = events[-1].data
    assert end["status"] == "succeeded", end["error"]
    assert phases(events)[:3] == ["queued", "generating", "preparing"]
    assert "building" in phases(events)
    assert generation_states(events) == ["requesting", "applied"]

    # What Kiln asked: the structured-output schema, the model, the template's AGENTS.md.
    [request] = fake_model.requests
    assert request.headers["authorization"] == "Bearer test-key"
    assert request.body["model"] == "fake-model"
    assert request.body["response_format"]["type"] == "json_schema"
    assert request.body["response_format"]["json_schema"]["strict"] is True
    system = request.body["messages"][0]["content"]
    assert "# vanilla template" in system
    assert "a pomodoro timer" in request.text
    assert "=== src/counter.js" in request.text

    # What it recorded and published.
    generation = end["generation"]
    assert generation["model"] == "fake-model"
    assert generation["template"] == "vanilla"
    assert generation["usage"] == {
        "prompt_tokens": 1200,
        "completion_tokens": 340,
        "total_tokens": 1540,
    }
    assert generation["files"] == ["index.html", "src/main.js"]
    assert generation["deleted"] == ["src/counter.js"]
    with gen_stack.http() as http:
        record = http.get(f"/api/v1/builds/{build_id}/generation").json()
    assert record["prompt"] == "a pomodoro timer"
    assert record["files"]["index.html"] == page
    assert [r["kind"] for r in record["rounds"]] == ["generate"]
    assert "Pomodoro by the fake model" in gen_stack.preview(build_id).text
    assert gen_stack.preview(build_id, "/AGENTS.md").status_code == 404


def test_missing_dependency_is_fixed_in_round_two(gen_stack: Stack, fake_model: FakeModel) -> None:
    base = base_build(gen_stack)
    fake_model.script(
        answer({"build.js": MISSING_DEPENDENCY}, summary="pad the title"),
        answer({"build.js": write_dist("fixed in round two")}, summary="drop left-pad-kiln"),
    )
    build_id, events = generate(gen_stack, prompt="pad the title", base_build=base)
    save_transcript(gen_stack, "fixed-build", events)
    end = events[-1].data
    assert end["status"] == "succeeded", end["error"]
    assert end["project"] == "gen-base"
    assert phases(events).count("generating") == 2
    assert phases(events).count("building") == 2
    assert generation_states(events) == [
        "requesting",
        "applied",
        "diagnosed",
        "requesting",
        "applied",
    ]
    diagnosed = next(
        e.data for e in events if e.event == "generation" and e.data["state"] == "diagnosed"
    )
    assert diagnosed["diagnostics"]["category"] == "missing_dependency"

    # The fix request carried the report and the file it names.
    first, fix = fake_model.requests
    assert "[missing_dependency] build.js: Cannot find module 'left-pad-kiln'" in fix.text
    assert "=== build.js\n" + MISSING_DEPENDENCY in fix.text
    assert "=== build.js" in first.text and WRITE_DIST.strip() in first.text  # the base's files
    assert end["generation"]["fix_rounds"] == 1
    assert end["generation"]["model_calls"] == 2
    assert end["generation"]["usage"]["total_tokens"] == 2 * 1540
    assert end["generation"]["base_build"] == base
    assert "fixed in round two" in gen_stack.preview(build_id).text


def test_type_error_is_fixed_in_round_two(gen_stack: Stack, fake_model: FakeModel) -> None:
    def home(minutes: str) -> str:
        return (
            "function Home() {\n"
            f"  const minutes: number = {minutes}\n"
            '  return <h1 className="text-4xl">Pomodoro: {minutes} minutes</h1>\n'
            "}\n\nexport default Home\n"
        )

    fake_model.script(
        answer({"src/pages/Home.tsx": home("'twenty-five'")}),
        answer({"src/pages/Home.tsx": home("25")}),
    )
    build_id, events = generate(gen_stack, prompt="a pomodoro timer", template="react-ts")
    end = events[-1].data
    assert end["status"] == "succeeded", end["error"]
    diagnosed = [
        e.data for e in events if e.event == "generation" and e.data["state"] == "diagnosed"
    ]
    [item] = diagnosed[0]["diagnostics"]["items"]
    assert (item["category"], item["file"], item["line"]) == ("type_error", "src/pages/Home.tsx", 2)
    assert "TS2322" in item["message"]
    assert "# react-ts template" in fake_model.requests[1].body["messages"][0]["content"]
    page = gen_stack.preview(build_id).text
    script = re.search(r'src="(/assets/[^"]+\.js)"', page)
    assert script, page
    assert "Pomodoro" in gen_stack.preview(build_id, script.group(1)).text


def test_same_error_again_stops_the_loop(gen_stack: Stack, fake_model: FakeModel) -> None:
    base = base_build(gen_stack)
    fake_model.script(
        answer({"build.js": SYNTAX_ERROR}),
        answer({"build.js": SYNTAX_ERROR + "// tried something\n"}),
        answer({"build.js": write_dist("never asked for")}),
    )
    _build_id, events = generate(gen_stack, prompt="break it", base_build=base)
    end = events[-1].data
    assert end["status"] == "failed"
    assert end["error"]["code"] == "build_failed"
    assert end["error"]["diagnostics"]["category"] == "syntax"
    assert len(fake_model.requests) == 2  # the third answer was never asked for
    assert phases(events).count("building") == 2
    [stopped] = generation_events(events, "stopped")
    assert "same error came back" in str(stopped["message"])
    assert stopped["fingerprint"] == end["error"]["diagnostics"]["fingerprint"]
    assert end["generation"]["fix_rounds"] == 1


def test_fix_rounds_are_bounded(gen_stack: Stack, fake_model: FakeModel) -> None:
    base = base_build(gen_stack)
    # A different error every time: only the round limit (2 fixes) stops the loop.
    fake_model.script(
        answer({"build.js": 'require("missing-one");\n'}),
        answer({"build.js": 'require("missing-two");\n'}),
        answer({"build.js": 'require("missing-three");\n'}),
        answer({"build.js": write_dist("never asked for")}),
    )
    _build_id, events = generate(gen_stack, prompt="anything", base_build=base)
    end = events[-1].data
    assert end["status"] == "failed"
    assert len(fake_model.requests) == 3
    assert phases(events).count("building") == 3
    [stopped] = generation_events(events, "stopped")
    assert "no fix rounds left (2 used)" in str(stopped["message"])
    assert "missing-three" in end["error"]["diagnostics"]["items"][0]["message"]
    assert (end["generation"]["model_calls"], end["generation"]["fix_rounds"]) == (3, 2)


def test_cancel_while_the_model_thinks(gen_stack: Stack, fake_model: FakeModel) -> None:
    base = base_build(gen_stack)
    slow = answer({"build.js": write_dist("never built")})
    slow.delay_s = 3
    fake_model.script(slow)
    reply = gen_stack.client.generate(prompt="anything", base_build=base)
    deadline = time.monotonic() + 30
    while not fake_model.requests and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fake_model.requests, "the model was never asked"
    gen_stack.client.cancel(reply["id"])
    events = gen_stack.events(reply["id"])
    end = events[-1].data
    assert end["status"] == "cancelled"
    assert "building" not in phases(events)


def test_rate_limit_is_retried_after_retry_after(gen_stack: Stack, fake_model: FakeModel) -> None:
    base = base_build(gen_stack)
    fake_model.script(rate_limited("1"), answer({"build.js": write_dist("after the 429")}))
    build_id, events = generate(gen_stack, prompt="anything", base_build=base)
    assert events[-1].data["status"] == "succeeded"
    first, second = fake_model.requests
    assert second.at - first.at >= 1.0  # Retry-After: 1 was honoured, not the 0.2 s backoff
    [retry] = generation_events(events, "retrying")
    assert retry["wait_s"] == 1.0
    assert retry["attempt"] == 2
    assert "HTTP 429" in str(retry["message"])
    assert "after the 429" in gen_stack.preview(build_id).text


def test_retry_after_beyond_the_budget_fails_at_once(
    gen_stack: Stack, fake_model: FakeModel
) -> None:
    base = base_build(gen_stack)
    fake_model.script(rate_limited("3600"), answer({"build.js": write_dist("never")}))
    _build_id, events = generate(gen_stack, prompt="anything", base_build=base)
    end = events[-1].data
    assert end["error"]["code"] == "generation_timeout"
    assert "asked to wait 3600 s" in end["error"]["message"]
    assert "time budget" in end["error"]["message"]
    assert len(fake_model.requests) == 1
    assert generation_events(events, "retrying") == []


def test_invalid_json_fails_clearly_without_building(
    gen_stack: Stack, fake_model: FakeModel
) -> None:
    base = base_build(gen_stack)
    fake_model.script(completion('Sure! Here is your app: {"files": ['))
    _build_id, events = generate(gen_stack, prompt="anything", base_build=base)
    end = events[-1].data
    assert end["status"] == "failed"
    assert end["error"]["code"] == "invalid_model_output"
    assert "not valid JSON" in end["error"]["message"]
    assert "Sure! Here is your app" in end["error"]["message"]
    assert end["error"]["diagnostics"]["category"] == "other"
    assert "building" not in phases(events)
    assert len(fake_model.requests) == 1
    assert end["generation"]["model_calls"] == 1
    assert end["generation"]["files"] == []


def test_refused_key_fails_at_once(gen_stack: Stack, fake_model: FakeModel) -> None:
    base = base_build(gen_stack)
    denied = completion("")
    denied.status, denied.body = 401, {"error": {"message": "Incorrect API key provided"}}
    fake_model.script(denied, answer({"build.js": write_dist("never")}))
    _build_id, events = generate(gen_stack, prompt="anything", base_build=base)
    end = events[-1].data
    assert end["error"]["code"] == "model_error"
    assert "HTTP 401" in end["error"]["message"]
    assert len(fake_model.requests) == 1


def test_bad_generate_requests_are_refused_before_queueing(gen_stack: Stack) -> None:
    with gen_stack.http() as http:
        cases = [
            ({"prompt": ""}, 400),
            ({"prompt": "x", "template": "nope"}, 404),
            ({"prompt": "x", "base_build": "0123456789abcdef"}, 404),
            ({"prompt": "x", "template": "react", "base_build": "0123456789abcdef"}, 400),
            ({"prompt": "x", "files": {}}, 400),
        ]
        for body, status in cases:
            response = http.post("/api/v1/generate", json=body)
            assert response.status_code == status, (body, response.text)
            assert "error" in response.json()


def test_cli_generate_follows_and_prints_the_preview_url(
    gen_stack: Stack, fake_model: FakeModel
) -> None:
    base = base_build(gen_stack)
    fake_model.script(answer({"build.js": write_dist("from the cli")}))
    kiln = str(Path(sys.executable).with_name("kiln"))
    result = subprocess.run(
        [kiln, "generate", "a page from the cli", "--from", base],
        env={**os.environ, "KILN_URL": gen_stack.url},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    url = result.stdout.strip()
    assert re.fullmatch(r"http://[0-9a-f]{16}\.preview\.localhost:\d+/", url), result.stdout
    assert "fake-model: 1 calls, 0 fix rounds, 1540 tokens" in result.stderr
    build_id = url.split("//")[1].split(".")[0]
    assert "from the cli" in gen_stack.preview(build_id).text
    with httpx.Client() as http:
        assert http.get(f"{gen_stack.url}/api/v1/builds/{build_id}").json()["generation"]

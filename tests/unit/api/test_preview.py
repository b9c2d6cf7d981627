from api.preview import status_page
from orchestrator.records.models import Build


def test_a_running_build_shows_a_self_refreshing_progress_page() -> None:
    page = status_page(
        Build(id="0123456789abcdef", project="p", status="running", phase="building")
    )
    assert page.status_code == 503
    assert page.headers["retry-after"] == "2"
    html = page.body.decode()
    assert 'http-equiv="refresh"' in html and "building" in html


def test_a_failed_build_shows_its_error_escaped() -> None:
    build = Build(
        id="0123456789abcdef",
        project="p",
        status="failed",
        phase="done",
        error_code="build_failed",
        error_message="the build failed with exit code 1",
        error_log_tail="<script>alert(1)</script>",
    )
    page = status_page(build)
    html = page.body.decode()
    assert page.status_code == 404
    assert "refresh" not in html
    assert "build_failed" in html and "exit code 1" in html
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html

import json

import httpx
import pytest
from typer.testing import CliRunner

from slipway_cli import client, contexts
from slipway_cli.api import Slipway
from slipway_cli.main import app


def test_health_reports_an_unreachable_gateway_clearly() -> None:
    result = CliRunner().invoke(app, ["health", "--url", "http://127.0.0.1:9"])
    assert result.exit_code == 2
    assert "cannot reach http://127.0.0.1:9" in result.output


def test_the_catalog_revision_a_write_answered_is_handed_back_with_the_next_requests(
    tmp_path, monkeypatch
) -> None:
    """So the deployer serves a deploy asked right after a create from a catalog that has it,
    whichever gateway the next command reaches."""
    monkeypatch.setenv("SLIPWAY_CONFIG_DIR", str(tmp_path))
    sent: list[dict[str, str]] = []
    answers = iter(["p1:3", "p1:2, p2:5", None])

    def request(method: str, url: str, **kwargs: object) -> httpx.Response:
        sent.append(dict(kwargs["headers"]))  # type: ignore[call-overload]
        answer = next(answers)
        headers = {client.REVISION_HEADER: answer} if answer else {}
        return httpx.Response(200, json={}, headers=headers)

    monkeypatch.setattr(httpx, "request", request)
    for _ in range(3):
        client.call("POST", "/anything", auth=False)
    assert client.REVISION_HEADER not in sent[0]
    assert sent[1][client.REVISION_HEADER] == "p1:3"
    assert sent[2][client.REVISION_HEADER] == "p1:3,p2:5"  # never lowered
    assert (tmp_path / "catalog-revisions.json").stat().st_mode & 0o777 == 0o600


def test_an_api_error_is_one_line_with_its_code_and_exit_1(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SLIPWAY_CONFIG_DIR", str(tmp_path))

    def request(method: str, url: str, **kwargs: object) -> httpx.Response:
        body = {"error": {"code": "SERVICE_NOT_FOUND", "message": "No such service."}}
        return httpx.Response(404, json=body)

    monkeypatch.setattr(httpx, "request", request)
    result = CliRunner().invoke(app, ["services", "show", "7b0e0c56-5a8e-4a36-9d8e-3c1f4b7a0c11"])
    assert result.exit_code == 1
    assert result.stderr == "SERVICE_NOT_FOUND: No such service.\n"
    assert result.stdout == ""


def test_ctrl_c_ends_a_command_with_130_and_no_traceback(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SLIPWAY_CONFIG_DIR", str(tmp_path))

    def request(method: str, url: str, **kwargs: object) -> httpx.Response:
        raise KeyboardInterrupt

    monkeypatch.setattr(httpx, "request", request)
    result = CliRunner().invoke(app, ["deployments", "list", "e"])
    assert result.exit_code == 130
    assert "Traceback" not in result.output


def test_a_usage_problem_found_after_parsing_exits_2_before_any_request(monkeypatch) -> None:
    def request(method: str, url: str, **kwargs: object) -> httpx.Response:
        raise AssertionError("nothing is sent")

    monkeypatch.setattr(httpx, "request", request)
    result = CliRunner().invoke(app, ["vars", "set", "--env", "e", "1BAD=x"])
    assert result.exit_code == 2
    assert "is not a variable name" in result.stderr
    result = CliRunner().invoke(app, ["vars", "list", "--env", "e", "--service", "s"])
    assert result.exit_code == 2 and "name one target" in result.stderr


def test_a_post_retried_after_a_gateway_timeout_carries_the_same_idempotency_key(
    tmp_path, monkeypatch
) -> None:
    """So the deployer answers the first attempt's deployment and queues no second one."""
    monkeypatch.setenv("SLIPWAY_CONFIG_DIR", str(tmp_path))
    monkeypatch.setattr(client.time, "sleep", lambda seconds: None)
    sent: list[dict[str, str]] = []
    answers: list[httpx.Response | Exception] = [
        httpx.ReadTimeout("slow"),
        httpx.Response(504, json={"error": {"code": "UPSTREAM_TIMEOUT", "message": "late"}}),
        httpx.Response(202, json={"deployment_id": "d1"}),
    ]

    def request(method: str, url: str, **kwargs: object) -> httpx.Response:
        sent.append(dict(kwargs["headers"]))  # type: ignore[call-overload]
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(httpx, "request", request)
    assert Slipway().act("e1", "deploy")["deployment_id"] == "d1"
    keys = {headers["idempotency-key"] for headers in sent}
    assert len(sent) == 3 and len(keys) == 1
    # the next request is another one: another key
    answers.append(httpx.Response(202, json={"deployment_id": "d2"}))
    Slipway().act("e1", "deploy")
    assert sent[-1]["idempotency-key"] not in keys


def test_a_refusal_is_not_retried_and_a_login_never(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SLIPWAY_CONFIG_DIR", str(tmp_path))
    calls: list[str] = []

    def request(method: str, url: str, **kwargs: object) -> httpx.Response:
        calls.append(url)
        status = 409 if "deploy" in url else 504
        return httpx.Response(status, json={"error": {"code": "X", "message": "no"}})

    monkeypatch.setattr(httpx, "request", request)
    for method, path in (("POST", "/environments/e/deploy"), ("POST", "/auth/login")):
        with pytest.raises(client.ApiError):
            client.call(method, path)
    assert len(calls) == 2


def test_contexts_pick_the_gateway_and_keep_a_session_each(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SLIPWAY_CONFIG_DIR", str(tmp_path))
    monkeypatch.delenv("SLIPWAY_API_URL", raising=False)
    monkeypatch.delenv("SLIPWAY_CONTEXT", raising=False)
    monkeypatch.delenv("SLIPWAY_TOKEN", raising=False)
    runner = CliRunner()
    assert contexts.api_url() == contexts.DEFAULT_URL
    for name, url in (("prod", "https://p.example"), ("lab", "http://10.0.0.5:8080/")):
        assert runner.invoke(app, ["context", "add", name, "--url", url]).exit_code == 0
    assert contexts.api_url() == "https://p.example"  # the first one added is current
    client.save_session({"access_token": "prod-token"})
    assert runner.invoke(app, ["context", "use", "lab"]).exit_code == 0
    assert contexts.api_url() == "http://10.0.0.5:8080"
    assert client.auth_headers().get("authorization") is None  # lab has no session yet
    client.save_session({"access_token": "lab-token"})
    assert client.auth_headers()["authorization"] == "Bearer lab-token"
    monkeypatch.setenv("SLIPWAY_CONTEXT", "prod")  # one command elsewhere
    assert client.auth_headers()["authorization"] == "Bearer prod-token"
    assert (tmp_path / "session-prod.json").stat().st_mode & 0o777 == 0o600
    listed = runner.invoke(app, ["context", "list", "-o", "json"])
    assert [(c["current"], c["name"]) for c in json.loads(listed.stdout)] == [
        ("", "lab"),
        ("*", "prod"),
    ]
    monkeypatch.setenv("SLIPWAY_API_URL", "http://elsewhere:1")  # the variable wins
    assert contexts.api_url() == "http://elsewhere:1"
    unknown = runner.invoke(app, ["context", "use", "nope"])
    assert unknown.exit_code == 2 and "no context 'nope'" in unknown.stderr
    assert runner.invoke(app, ["context", "remove", "prod"]).exit_code == 0
    assert not (tmp_path / "session-prod.json").exists()


@pytest.mark.parametrize("command", ["signup", "login"])
def test_the_password_is_optional_in_the_help_and_asked_only_when_not_given(
    command: str, tmp_path, monkeypatch
) -> None:
    """The help does not mark ``--password`` required (it is asked when not given); given, it is
    not asked; not given, it is asked (hidden; twice for a new account)."""
    monkeypatch.setenv("SLIPWAY_CONFIG_DIR", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "120")
    sent: list[object] = []

    def request(method: str, url: str, **kwargs: object) -> httpx.Response:
        sent.append(kwargs["json"])
        answer = {"id": "u1", "email": "ada@example.com", "access_token": "t", "refresh_token": "r"}
        return httpx.Response(200, json=answer)

    monkeypatch.setattr(httpx, "request", request)
    names = ["--email", "ada@example.com"] + (["--name", "Ada"] if command == "signup" else [])
    help_text = CliRunner().invoke(app, [command, "--help"]).output
    password_line = next(line for line in help_text.splitlines() if "--password" in line)
    assert "required" not in password_line and "asked when not given" in password_line
    given = CliRunner().invoke(app, [command, *names, "--password", "pw-given"], input="")
    assert given.exit_code == 0, given.output
    assert "Password" not in given.output
    typed = "pw-typed\n" * (2 if command == "signup" else 1)
    asked = CliRunner().invoke(app, [command, *names], input=typed)
    assert asked.exit_code == 0, asked.output
    assert "Password" in asked.output and "pw-typed" not in asked.output
    assert [body["password"] for body in sent] == ["pw-given", "pw-typed"]  # type: ignore[index]

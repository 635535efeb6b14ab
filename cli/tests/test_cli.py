from typer.testing import CliRunner

from slipway_cli.main import app


def test_health_reports_an_unreachable_gateway_clearly() -> None:
    result = CliRunner().invoke(app, ["health", "--url", "http://127.0.0.1:9"])
    assert result.exit_code == 2
    assert "cannot reach http://127.0.0.1:9" in result.output

import re

from typer.testing import CliRunner

from flowfi.cli import app


def words(output: str) -> str:
    """The text of a rich panel, its frame and line breaks taken out."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", output).split())


def test_the_local_network_commands_take_a_build_of_the_contract_and_refuse_others() -> None:
    runner = CliRunner()
    for command in ("devnet", "dev"):
        refused = runner.invoke(app, [command, "--build", "v1"])
        assert refused.exit_code == 2
        assert "'v1' is not a build of the contract; one of 8723543, c9f5d2e" in words(refused.output)
        helped = runner.invoke(app, [command, "--help"])
        assert "the FlowFi contract's build: 8723543 or c9f5d2e" in words(helped.output)

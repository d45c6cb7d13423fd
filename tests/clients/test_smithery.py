"""smithery.yaml is valid, and the command its commandFunction builds starts a working server."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from fastmcp import Client
from fastmcp.client.transports import StdioTransport

SMITHERY = Path(__file__).resolve().parents[2] / "smithery.yaml"
EVAL = (
    "const build = eval(process.argv[1]);"
    "process.stdout.write(JSON.stringify(build(JSON.parse(process.argv[2]))));"
)


@pytest.fixture(scope="module")
def start() -> dict[str, Any]:
    return yaml.safe_load(SMITHERY.read_text(encoding="utf-8"))["startCommand"]  # type: ignore[no-any-return]


def command_for(start: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """Evaluate commandFunction the way Smithery does: a JavaScript arrow function, in node."""
    if shutil.which("node") is None:
        pytest.skip("node is not installed")
    out = subprocess.run(
        ["node", "-e", EVAL, start["commandFunction"], json.dumps(config)],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def test_stdio_start_command_with_a_schema_the_example_satisfies(start: dict[str, Any]) -> None:
    assert start["type"] == "stdio"
    jsonschema.Draft7Validator.check_schema(start["configSchema"])
    jsonschema.validate(start["exampleConfig"], start["configSchema"])
    assert set(start["configSchema"]["properties"]) == {"home", "namespace"}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"home": 3}, start["configSchema"])


def test_command_function_maps_config_to_the_environment(start: dict[str, Any]) -> None:
    example = command_for(start, start["exampleConfig"])
    assert example["command"] == "memento-mcp" and example["args"] == ["serve"]
    assert example["env"]["MEMENTO_HOME"] == start["exampleConfig"]["home"]
    assert example["env"]["MEMENTO_NAMESPACE"] == start["exampleConfig"]["namespace"]
    bare = command_for(start, {})
    assert "MEMENTO_HOME" not in bare["env"]  # the user data directory
    assert bare["env"]["MEMENTO_NAMESPACE"] == "default"


@pytest.mark.slow
@pytest.mark.anyio
async def test_the_built_command_serves_tools_over_stdio(
    start: dict[str, Any], tmp_path: Path
) -> None:
    config = {**start["exampleConfig"], "home": str(tmp_path / "bank"), "namespace": "smithery"}
    spec = command_for(start, config)
    # Smithery runs the command where the package is installed; here that is this venv.
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    env = {**spec["env"], "PATH": path}
    transport = StdioTransport(spec["command"], spec["args"], env=env)
    async with Client(transport, timeout=120) as client:
        names = {tool.name for tool in await client.list_tools()}
        assert {"retrieve_cases", "record_outcome", "case_bank_stats"} <= names
        stats = await client.call_tool("case_bank_stats", {})
    assert stats.structured_content["path"] == str(tmp_path / "bank" / "memento.db")
    assert (tmp_path / "bank" / "memento.db").is_file()

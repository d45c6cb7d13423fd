"""The code server's sandbox: each escape attempt fails cleanly and the server keeps answering."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fastmcp import Client
from fastmcp.exceptions import ToolError

from toolservers.code.config import Limits, SandboxConfig
from toolservers.code.server import build_server

pytestmark = [pytest.mark.anyio, pytest.mark.slow]
SECRET = "tm-secret-7f3a9c"
LIMITS = Limits(
    wall_s=10,
    cpu_s=10,
    memory_bytes=768 << 20,
    nproc=24,
    output_chars=4000,
    tmp_bytes=16 << 20,
    workspace_bytes=64 << 20,
)


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[Client]:
    server = build_server(SandboxConfig(limits=LIMITS), workspace_dir=tmp_path / "ws")
    async with Client(server) as c:
        info = (await c.call_tool("sandbox_info", {})).structured_content
        if os.environ.get("TOOLSERVERS_TEST_REQUIRE_BWRAP") and info["level"] != "bwrap":
            pytest.fail(f"CI expects the bubblewrap sandbox, got {info['level']}: {info['note']}")
        if info["runs_as_root"]:
            pytest.skip(f"no safe isolation on this machine: {info['note']}")
        yield c


async def run(client: Client, code: str, **extra: object) -> dict:
    result = await client.call_tool("run_python", {"code": code, **extra})
    return result.structured_content


async def still_answers(client: Client) -> None:
    assert (await run(client, "print(6 * 7)"))["stdout"].strip() == "42"


async def test_runs_code_and_keeps_files(client: Client) -> None:
    out = await run(client, "open('hello.txt', 'w').write('hi'); print('done')")
    assert out["exit_code"] == 0 and out["stdout"] == "done\n"
    read = await client.call_tool("read_file", {"path": "hello.txt"})
    assert read.structured_content["text"] == "hi"
    await client.call_tool("write_file", {"path": "sub/in.txt", "content": "from the client"})
    assert (await run(client, "print(open('sub/in.txt').read())"))["stdout"] == "from the client\n"
    listing = (await client.call_tool("list_files", {})).structured_content["entries"]
    assert {e["path"] for e in listing} == {"hello.txt", "sub", "sub/in.txt"}


async def test_parent_secret_is_not_visible(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOOLSERVERS_TEST_SECRET", SECRET)
    code = (
        "import os, glob\n"
        "print(dict(os.environ))\n"
        "for p in glob.glob('/proc/*/environ'):\n"
        "    try: print(open(p, 'rb').read())\n"
        "    except OSError as e: print('denied', p)\n"
    )
    out = await run(client, code)
    assert out["exit_code"] == 0
    assert SECRET not in out["stdout"] + out["stderr"]
    shell = await client.call_tool("run_shell", {"command": "env; cat /proc/*/environ"})
    assert SECRET not in shell.structured_content["stdout"] + shell.structured_content["stderr"]


async def test_cannot_write_outside_workspace(client: Client, tmp_path: Path) -> None:
    target = tmp_path / "escaped.txt"
    code = (
        f"for p in [{str(target)!r}, '/etc/escaped', '/usr/escaped', '../escaped']:\n"
        "    try:\n"
        "        open(p, 'w').write('x'); print('wrote', p)\n"
        "    except OSError as e:\n"
        "        print('refused', p, type(e).__name__)\n"
    )
    out = await run(client, code)
    assert "refused " + str(target) in out["stdout"] and "refused /etc/escaped" in out["stdout"]
    assert (
        not target.exists()
        and not Path("/etc/escaped").exists()
        and not Path("/usr/escaped").exists()
    )
    assert not (tmp_path / "escaped").exists()
    for bad in ["../escaped.txt", str(target), "a/../../escaped.txt"]:
        with pytest.raises(ToolError, match="absolute|'\\.\\.'"):
            await client.call_tool("write_file", {"path": bad, "content": "x"})
    assert not target.exists()
    await still_answers(client)


async def test_cannot_reach_loopback_listener(client: Client) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    code = (
        "import socket\n"
        f"try:\n    socket.create_connection(('127.0.0.1', {port}), timeout=3); print('CONNECTED')\n"
        "except OSError as e:\n    print('blocked', type(e).__name__)\n"
    )
    out = await run(client, code)
    listener.setblocking(False)
    with pytest.raises(BlockingIOError):  # nothing ever reached the listener
        listener.accept()
    listener.close()
    assert out["stdout"].startswith("blocked"), out
    await still_answers(client)


async def test_infinite_loop_is_stopped(client: Client) -> None:
    out = await run(client, "while True:\n    pass", timeout_s=2)
    assert out["exit_code"] is None and out["killed_by"] in ("wall timeout (2 s)", "CPU time limit")
    assert out["duration_s"] < 6
    await still_answers(client)


async def test_huge_allocation_fails_cleanly(client: Client) -> None:
    out = await run(client, "x = bytearray(4 * 2**30)\nprint('allocated')")
    assert "allocated" not in out["stdout"] and "MemoryError" in out["stderr"]
    await still_answers(client)


async def test_fork_bomb_is_contained(client: Client) -> None:
    info = (await client.call_tool("sandbox_info", {})).structured_content
    if not info["nproc_enforced"]:
        pytest.skip("process-count limit cannot bite here; not running a fork bomb")
    uid = info["drop_to_uid"] if info["drop_to_uid"] is not None else os.getuid()
    before = _count(uid)
    code = (
        "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    )
    out = await run(client, code, timeout_s=3)
    assert out["exit_code"] is None and out["killed_by"] is not None
    assert _count(uid) <= before  # the whole PID namespace / process group went with it
    await still_answers(client)


async def test_symlink_out_of_workspace_is_refused(client: Client, tmp_path: Path) -> None:
    secret = tmp_path / "host-secret.txt"
    secret.write_text(SECRET)
    code = (
        "import os\n"
        f"os.symlink({str(secret)!r}, 'to_secret')\n"
        "os.symlink('/', 'to_root')\n"
        "os.symlink('/etc/passwd', 'passwd')\n"
        f"print(os.path.exists({str(secret)!r}))\n"
    )
    out = await run(client, code)
    assert out["exit_code"] == 0, out
    for path in ["to_secret", "to_root/etc/hostname", "passwd"]:
        with pytest.raises(ToolError, match="outside the workspace"):
            await client.call_tool("read_file", {"path": path})
    with pytest.raises(ToolError, match="outside the workspace"):
        await client.call_tool("write_file", {"path": "to_root/tmp/pwned", "content": "x"})
    with pytest.raises(ToolError, match="outside the workspace"):
        await client.call_tool("list_files", {"path": "to_root"})
    assert secret.read_text() == SECRET and not Path("/tmp/pwned").exists()
    await still_answers(client)


async def test_output_is_truncated(client: Client) -> None:
    out = await run(client, "print('x' * 100_000)")
    assert out["truncated"] and len(out["stdout"]) < 5000


def _count(uid: int) -> int:
    return sum(1 for e in os.scandir("/proc") if e.name.isdigit() and _owner(e.path) == uid)


def _owner(path: str) -> int | None:
    try:
        return os.stat(path).st_uid
    except OSError:
        return None


@pytest.mark.parametrize(("level", "network"), [("unshare", "none"), ("none", "host")])
async def test_fallback_level_is_reported(tmp_path: Path, level: str, network: str) -> None:
    config = SandboxConfig(isolation=level, limits=LIMITS)  # type: ignore[arg-type]
    server = build_server(config, workspace_dir=tmp_path / "ws")
    async with Client(server) as c:
        info = (await c.call_tool("sandbox_info", {})).structured_content
        assert info["level"] == level and info["network"] == network
        resource = json.loads((await c.read_resource("sandbox://info"))[0].text)
        assert resource["level"] == level and resource["limits"]["nproc"] == LIMITS.nproc
        if info["runs_as_root"]:
            with pytest.raises(ToolError, match="refusing to run code"):
                await c.call_tool("run_python", {"code": "print(1)"})
        else:
            assert (await run(c, "print(1)"))["stdout"] == "1\n"


async def test_disk_filling_is_stopped(client: Client) -> None:
    # Each file stays under RLIMIT_FSIZE; only the workspace watch can stop the total.
    code = (
        "import os\n"
        "for i in range(1000):\n"
        "    with open(f'fill{i}.bin', 'wb') as f:\n"
        "        f.write(os.urandom(4 << 20))\n"
    )
    out = await run(client, code)
    assert out["killed_by"] is not None and out["killed_by"].startswith("workspace size limit"), out
    await client.call_tool("run_shell", {"command": "rm -f fill*.bin"})
    listing = (await client.call_tool("list_files", {})).structured_content["entries"]
    assert not [e for e in listing if e["path"].startswith("fill")]
    tmp = await run(client, "open('/tmp/t', 'wb').write(b'x' * (64 << 20))")
    assert "No space left" in tmp["stderr"] or "OSError" in tmp["stderr"], tmp
    await still_answers(client)


async def test_only_allowed_env_passes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOOLSERVERS_TEST_ALLOWED", "visible-value")
    monkeypatch.setenv("TOOLSERVERS_TEST_SECRET", SECRET)
    config = SandboxConfig(limits=LIMITS, env_allow=("TOOLSERVERS_TEST_ALLOWED",))
    async with Client(build_server(config, workspace_dir=tmp_path / "ws")) as c:
        out = await run(c, "import os; print(sorted(os.environ.items()))")
    assert "visible-value" in out["stdout"] and SECRET not in out["stdout"]

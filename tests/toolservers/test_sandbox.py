"""The code server's sandbox: each escape attempt fails cleanly and the server keeps answering."""

from __future__ import annotations

import json
import os
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
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
    file_bytes=32 << 20,
    nproc=24,
    output_chars=4000,
    tmp_bytes=16 << 20,
    workspace_bytes=64 << 20,
)


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[Client]:
    async with level_client(tmp_path / "ws", "auto") as c:
        yield c


@asynccontextmanager
async def level_client(workspace: Path | None, level: str) -> AsyncIterator[Client]:
    """A client of a code server at `level`; skips where code would run as root (unsafe).

    `workspace=None` is the server's default, a new folder in /tmp: unlike one under pytest's
    0700 tmp_path, the code's uid can reach it by path, as TMPDIR at level `none` needs.
    """
    config = SandboxConfig(isolation=level, limits=LIMITS)  # type: ignore[arg-type]
    server = build_server(config, workspace_dir=workspace)
    async with Client(server) as c:
        info = (await c.call_tool("sandbox_info", {})).structured_content
        require_bwrap = os.environ.get("TOOLSERVERS_TEST_REQUIRE_BWRAP") and level == "auto"
        if require_bwrap and info["level"] != "bwrap":
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
    info = (await client.call_tool("sandbox_info", {})).structured_content
    if info["filesystem"] != "workspace-only" and info["drop_to_uid"] is None:
        pytest.skip(f"code runs as this user and sees the host: {info['not_enforced']}")
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
    info = (await client.call_tool("sandbox_info", {})).structured_content
    if info["network"] != "none":
        pytest.skip(f"{info['level']} has the host's network: {info['not_enforced']}")
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
    if info["processes"] != "pid namespace":
        pytest.skip(f"{info['level']} cannot reap every process: {info['not_enforced']}")
    name = _marker()
    code = (
        f"{NAME_SELF.format(name)}\n"
        "while True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    )
    out = await run(client, code, timeout_s=3)
    assert out["exit_code"] is None and out["killed_by"] is not None
    assert _named(name) == []  # every fork is dead and reaped, not a zombie waiting for init
    await still_answers(client)


@pytest.mark.parametrize("level", ["auto", "unshare", "none"])
async def test_no_process_outlives_the_run(level: str) -> None:
    # A daemon in the classic way (fork, setsid, fork): it leaves the run's process group.
    name = _marker()
    code = (
        f"{NAME_SELF.format(name)}\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        "        time.sleep(300)\n"
        "    os._exit(0)\n"
        "os.wait()\nprint('parent done')\n"
    )
    async with level_client(None, level) as c:
        info = (await c.call_tool("sandbox_info", {})).structured_content
        if info["processes"] != "pid namespace":
            pytest.skip(f"{info['level']} cannot reap every process: {info['not_enforced']}")
        out = await run(c, code)
        assert _named(name) == []
        assert out["stdout"] == "parent done\n", out


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


# Names the process (its `comm`, which zombies keep too) so the test finds its own processes
# among those of other runs of the same uid on this machine.
NAME_SELF = "import ctypes, os, time\nctypes.CDLL(None).prctl(15, b'{}', 0, 0, 0)"


def _marker() -> str:
    return "tsb" + uuid.uuid4().hex[:12]  # at most 15 characters, the kernel's limit for comm


def _named(name: str) -> list[str]:
    """Host processes, alive or zombie, named `name`: pid and state of each."""
    found = []
    for entry in os.scandir("/proc"):
        try:
            with open(os.path.join(entry.path, "stat")) as handle:
                stat = handle.read()
        except OSError:
            continue
        if stat.split(" (", 1)[1].rsplit(") ", 1)[0] == name:
            found.append(f"{entry.name} {stat.rsplit(') ', 1)[1].split()[0]}")
    return found


@pytest.mark.parametrize(("level", "network"), [("unshare", "none"), ("none", "host")])
async def test_fallback_level_is_reported(tmp_path: Path, level: str, network: str) -> None:
    config = SandboxConfig(isolation=level, limits=LIMITS)  # type: ignore[arg-type]
    server = build_server(config, workspace_dir=tmp_path / "ws")
    async with Client(server) as c:
        info = (await c.call_tool("sandbox_info", {})).structured_content
        assert info["level"] == level and info["network"] == network
        assert info["not_enforced"] and info["tmp"] != "private tmpfs"
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
    await still_answers(client)


@pytest.mark.parametrize("level", ["auto", "unshare", "none"])
async def test_temp_files_stay_in_the_run(level: str) -> None:
    async with level_client(None, level) as c:
        made = await run(c, "import tempfile\nprint(tempfile.mkstemp()[1])")
    assert made["exit_code"] == 0, made
    assert not Path(made["stdout"].strip()).exists()  # TMPDIR was the run's own, and is gone


@pytest.mark.parametrize("level", ["auto", "unshare", "none"])
async def test_cannot_fill_host_tmp(level: str) -> None:
    host_path = Path("/tmp") / _marker()
    async with level_client(None, level) as c:
        info = (await c.call_tool("sandbox_info", {})).structured_content
        if info["tmp"] == "host":
            pytest.skip(f"{info['level']}: {info['not_enforced']}")
        out = await run(c, f"open({str(host_path)!r}, 'wb').write(b'x' * (64 << 20))")
    # A full private tmpfs (bwrap) or the file size limit stops it, and the host never sees it.
    assert "OSError" in out["stderr"], out
    assert not host_path.exists()


async def test_only_allowed_env_passes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOOLSERVERS_TEST_ALLOWED", "visible-value")
    monkeypatch.setenv("TOOLSERVERS_TEST_SECRET", SECRET)
    config = SandboxConfig(limits=LIMITS, env_allow=("TOOLSERVERS_TEST_ALLOWED",))
    async with Client(build_server(config, workspace_dir=tmp_path / "ws")) as c:
        out = await run(c, "import os; print(sorted(os.environ.items()))")
    assert "visible-value" in out["stdout"] and SECRET not in out["stdout"]

"""Run untrusted code in a contained child process: build the argv, enforce limits, clean up.

Containment, strongest first (`isolation.detect()` picks the best that works on this machine):

* ``bwrap``: bubblewrap namespaces. Read-only /usr, /etc and the Python install; the workspace is
  the only writable host path (at /workspace); private /tmp, /proc and /dev; no network; its own
  PID namespace, so nothing outlives a run. When the server is root, the code runs as an
  unprivileged uid (setpriv), because the kernel exempts uid 0 from RLIMIT_NPROC.
* ``unshare``: network, PID and mount namespaces (util-linux `unshare`): no network, nothing
  outlives a run, a private /proc, and /tmp is a per-run folder in the workspace; the rest of the
  host filesystem is visible under unix permissions. Plus the uid drop when possible.
* ``none``: resource limits and a scrubbed environment only; TMPDIR points into the workspace.

Every level sets rlimits (CPU time, address space, file size, process count, open files), a wall
timeout that kills the whole run, caps captured output, and passes only an allow-list of
environment variables. Code would run as root without bwrap only if TOOLSERVERS_CODE_ALLOW_ROOT
says so; otherwise the server refuses to run code and says why.
"""

from __future__ import annotations

import os
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from contextlib import suppress
from pathlib import Path

from pydantic import BaseModel, Field

from toolservers.code.config import Level, Limits, SandboxConfig

INSIDE_WORKSPACE = "/workspace"
RUN_TMP = ".sandbox-tmp"  # per-run temp folder in the workspace, outside bwrap; gone after the run
_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")


class RunResult(BaseModel):
    exit_code: int | None = Field(description="process exit status; null when it was killed")
    killed_by: str | None = Field(
        None, description="why it stopped early, e.g. wall timeout, CPU limit"
    )
    stdout: str
    stderr: str
    truncated: bool = Field(description="true when output was cut to the output limit")
    duration_s: float


def is_root() -> bool:
    return os.geteuid() == 0


def _python_dirs(python: str) -> list[str]:
    """Directories the interpreter needs, outside the system dirs already bound."""
    dirs = {
        sys.prefix,
        sys.base_prefix,
        sys.exec_prefix,
        str(Path(os.path.realpath(python)).parent.parent),
    }
    dirs.add(str(Path(python).absolute().parent.parent))
    return sorted(d for d in dirs if not any(Path(d).is_relative_to(s) for s in _SYSTEM_DIRS))


def clean_env(config: SandboxConfig, home: str, tmp: str) -> dict[str, str]:
    """The child's whole environment: fixed safe values plus names the operator allowed."""
    python_bin = str(Path(config.python).absolute().parent)
    env = {
        "PATH": f"{python_bin}:/usr/local/bin:/usr/bin:/bin",
        "HOME": home,
        "TMPDIR": tmp,
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "MPLBACKEND": "Agg",
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
    }
    env.update({n: os.environ[n] for n in config.env_allow if n in os.environ})
    return env


def _drop_privileges(config: SandboxConfig) -> list[str]:
    return [
        "setpriv",
        f"--reuid={config.uid}",
        f"--regid={config.gid}",
        "--clear-groups",
        "--inh-caps=-all",
        "--",
    ]


_SHED_CAPS = ["setpriv", "--bounding-set=-all", "--inh-caps=-all", "--"]


def _tmp_mount_script(run_tmp: Path, python: str) -> str:
    """Shell run in unshare's new mount namespace, while still privileged there: /tmp becomes
    the run's folder in the workspace, then execs the rest of the argv.

    An interpreter or venv under /tmp (a clone or scratch venv there) would vanish under the new
    /tmp, so each is first bound, read-only, at the same place inside the run's folder, and the
    folder is then bound recursively (bwrap's argv does the same after its tmpfs).
    """
    steps = []
    for path in _python_dirs(python):
        if Path(path).is_relative_to("/tmp"):
            inside = shlex.quote(str(run_tmp / Path(path).relative_to("/tmp")))
            steps.append(f"mkdir -p {inside} && mount --bind {shlex.quote(path)} {inside}")
            steps.append(f"mount -o remount,bind,ro {inside}")
    steps.append(f"mount --rbind {shlex.quote(str(run_tmp))} /tmp")
    return " && ".join(steps) + ' && exec "$@"'


def build_command(
    inner: list[str], workspace: Path, level: Level, config: SandboxConfig, drop: bool
) -> list[str]:
    """The full argv for one run; pure, so tests can read exactly what will be executed."""
    if level == "none":
        return (_drop_privileges(config) if drop else []) + inner
    if level == "unshare":
        ns = ["unshare", "--net", "--pid", "--kill-child", "--mount-proc"]
        if not is_root():
            ns.insert(1, "--map-root-user")
        bind_tmp = ["/bin/sh", "-c", _tmp_mount_script(workspace / RUN_TMP, config.python), "sh"]
        # Shed the namespace's capabilities, so the code cannot unmount /tmp again.
        shed = _drop_privileges(config) if drop else [] if is_root() else _SHED_CAPS
        return ns + ["--"] + bind_tmp + shed + inner
    argv = [
        "bwrap",
        "--die-with-parent",
        "--new-session",
        "--unshare-net",
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
    ]
    if not is_root():
        argv.append("--unshare-user")
    for path in _SYSTEM_DIRS:
        if os.path.islink(path):
            argv += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            argv += ["--ro-bind", path, path]
    argv += [
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--perms",
        "1777",
        "--size",
        str(config.limits.tmp_bytes),
        "--tmpfs",
        "/tmp",
    ]
    # After the private /tmp, so that an interpreter or venv living under /tmp stays visible.
    for path in _python_dirs(config.python):
        for parent in reversed(Path(path).parents[:-1]):  # bwrap would create them 0700
            argv += ["--perms", "0755", "--dir", str(parent)]
        argv += ["--ro-bind-try", path, path]
    argv += [
        "--bind",
        str(workspace),
        INSIDE_WORKSPACE,
        "--chdir",
        INSIDE_WORKSPACE,
        "--clearenv",
    ]
    for key, value in clean_env(config, INSIDE_WORKSPACE, "/tmp").items():
        argv += ["--setenv", key, value]
    if drop:
        argv += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"] + _drop_privileges(config)
    return argv + inner


def _processes_of(uid: int) -> int:
    """How many processes `uid` owns now; RLIMIT_NPROC counts them all, not only ours."""
    count = 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if os.stat(entry.path).st_uid == uid:
                    count += 1
            except OSError:
                continue
    return count


def _rlimits(limits: Limits, nproc: int) -> None:
    # Runs in the forked child before exec: only async-signal-safe-ish setrlimit calls here.
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_s, limits.cpu_s + 1))
    resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_bytes, limits.file_bytes))
    resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
    resource.setrlimit(resource.RLIMIT_NOFILE, (limits.open_files, limits.open_files))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _drain(pipe: object, cap: int, sink: list[bytes]) -> None:
    """Read a pipe to its end, keeping the first `cap` bytes, so a chatty child cannot block or flood."""
    kept = 0
    while chunk := pipe.read1(65536):  # type: ignore[attr-defined]
        if kept < cap:
            sink.append(chunk[: cap - kept])
        kept += len(chunk)
    sink.append(b"\0" if kept > cap else b"")


_SIGNALS = {
    signal.SIGXCPU: "CPU time limit",
    signal.SIGXFSZ: "file size limit",
    signal.SIGKILL: "killed (SIGKILL)",
    signal.SIGSEGV: "segmentation fault",
}


def execute(
    inner: list[str],
    workspace: Path,
    level: Level,
    config: SandboxConfig,
    drop: bool,
    stdin: str = "",
    limits: Limits | None = None,
) -> RunResult:
    """Run `inner` contained at `level`, enforcing every limit; never raises for the child's faults."""
    limits = limits or config.limits
    uid = config.uid if drop else os.getuid()
    nproc = limits.nproc + _processes_of(uid)
    argv = build_command(inner, workspace, level, config, drop)
    env = {"PATH": "/usr/bin:/bin"}
    if level != "bwrap":
        tmp = _fresh_tmp(workspace, config, drop)  # mounted on /tmp at `unshare`
        env = clean_env(config, str(workspace), "/tmp" if level == "unshare" else str(tmp))
    started = time.monotonic()
    proc = subprocess.Popen(
        argv,
        cwd=workspace,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        # Only setrlimit runs between fork and exec, so the threads caveat does not bite here.
        preexec_fn=lambda: _rlimits(limits, nproc),  # noqa: PLW1509
    )
    cap = limits.output_chars * 4  # bytes; decoded text is cut to output_chars below
    out: list[bytes] = []
    err: list[bytes] = []
    readers = [
        threading.Thread(target=_drain, args=(p, cap, s), daemon=True)
        for p, s in ((proc.stdout, out), (proc.stderr, err))
    ]
    for reader in readers:
        reader.start()
    assert proc.stdin is not None
    try:
        proc.stdin.write(stdin.encode())
        proc.stdin.close()
    except BrokenPipeError:
        pass
    killed_by = _watch(proc, workspace, limits)
    _stop(proc, level)
    if level != "bwrap":
        shutil.rmtree(workspace / RUN_TMP, ignore_errors=True)
    for reader in readers:
        reader.join(timeout=2)
    code = proc.returncode
    if killed_by is None and code is not None:
        sig = -code if code < 0 else code - 128 if level == "bwrap" and code > 128 else 0
        if sig in _SIGNALS:
            killed_by, code = _SIGNALS[signal.Signals(sig)], None
    stdout, cut_out = _text(out, limits.output_chars)
    stderr, cut_err = _text(err, limits.output_chars)
    return RunResult(
        exit_code=None if killed_by else code,
        killed_by=killed_by,
        stdout=stdout,
        stderr=stderr,
        truncated=cut_out or cut_err,
        duration_s=round(time.monotonic() - started, 3),
    )


def _watch(proc: subprocess.Popen[bytes], workspace: Path, limits: Limits) -> str | None:
    """Wait for the run; say why it must stop if the wall clock runs out or the workspace balloons.

    RLIMIT_FSIZE caps each file, not how many a run writes, so the workspace is measured while
    the code runs (every 0.25 s) against its size at the start plus `workspace_bytes`.
    """
    deadline = time.monotonic() + limits.wall_s
    ceiling = _tree_size(workspace) + limits.workspace_bytes
    while True:
        try:
            proc.wait(timeout=max(0.0, min(0.25, deadline - time.monotonic())))
            return None
        except subprocess.TimeoutExpired:
            if time.monotonic() >= deadline:
                return f"wall timeout ({limits.wall_s:g} s)"
            if _tree_size(workspace) > ceiling:
                return f"workspace size limit (grew over {limits.workspace_bytes >> 20} MB)"


def _tree_size(root: Path) -> int:
    """Bytes used under `root`, never following symlinks; each entry counts at least 512 bytes."""
    total = 0
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            try:
                total += max(512, os.lstat(os.path.join(dirpath, name)).st_blocks * 512)
            except OSError:
                continue
    return total


def _fresh_tmp(workspace: Path, config: SandboxConfig, drop: bool) -> Path:
    """An empty per-run temp folder in the workspace, so temp files count against its limit.

    Made anew each run, so that a symlink the last run left in its place is not followed.
    """
    tmp = workspace / RUN_TMP
    if tmp.is_symlink() or (tmp.exists() and not tmp.is_dir()):
        tmp.unlink()
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(mode=0o700, exist_ok=True)
    if drop:
        os.chown(tmp, config.uid, config.gid)
    return tmp


def _children(pid: int) -> list[int]:
    """Pids whose parent is `pid`, read from /proc/*/stat (field 4, after the parenthesised name)."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(os.path.join(entry.path, "stat"), "rb") as handle:
                    fields = handle.read().rsplit(b")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def _stop(proc: subprocess.Popen[bytes], level: Level) -> None:
    """Kill what is left of the run and reap it, so that nothing, not even a zombie, remains.

    With a PID namespace, killing its first process (the child of unshare or bwrap) kills all
    the others, and the kernel reaps them before that process's exit reaches its parent, which
    we then reap. Killing unshare with them would orphan that first process to the host's init,
    which reaps it when it gets round to it (issue 13 counted 23 such zombies after a fork bomb).
    Without a namespace (`none`) the process group is all we can reach.
    """
    if level != "none" and proc.poll() is None:
        for child in _children(proc.pid):
            with suppress(ProcessLookupError, PermissionError):
                os.kill(child, signal.SIGKILL)
        with suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _text(chunks: list[bytes], limit: int) -> tuple[str, bool]:
    overflow = bool(chunks) and chunks[-1] == b"\0"
    text = b"".join(chunks[:-1] if chunks else []).decode("utf-8", errors="replace")
    if not overflow and len(text) <= limit:
        return text, False
    note = "\n[... output truncated; write big results to a file and read it with read_file]"
    return text[:limit] + note, True

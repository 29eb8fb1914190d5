"""``parley serve`` on a data directory it cannot write: one clear line, a non-zero exit.

Root ignores file modes, so "read-only" is made real for root too: a read-only bind mount
of the directory in a private mount namespace (``unshare -m``, as root), or a directory
without write permission when not root; and a data dir path that runs through a file.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.parley_process import ParleyProcess
from tests.support.processes import free_port


def serve_argv(data_dir: Path) -> list[str]:
    return [
        sys.executable, "-m", "parley", "serve",
        "--host", "127.0.0.1", "--port", str(free_port()), "--data-dir", str(data_dir),
    ]  # fmt: skip


def run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
    # bounded: a server that starts instead of refusing is a failure, not a hang
    return subprocess.run(argv, capture_output=True, text=True, env=env, cwd=cwd, timeout=60)


def serve_read_only(data_dir: Path) -> subprocess.CompletedProcess[str]:
    """``parley serve --data-dir data_dir`` with data_dir read-only, even for root."""
    argv = serve_argv(data_dir)
    if os.geteuid() != 0:
        data_dir.chmod(0o555)
        try:
            return run(argv, data_dir.parent)
        finally:
            data_dir.chmod(0o755)
    if shutil.which("unshare") is None:
        pytest.fail("unshare (util-linux) is needed to make a read-only bind mount as root")
    d = str(data_dir)
    script = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && shift && exec "$@"'
    return run(["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", d, *argv],
               data_dir.parent)  # fmt: skip


def assert_one_clear_line(result: subprocess.CompletedProcess[str], data_dir: Path) -> str:
    assert result.returncode == 1, (result.returncode, result.stderr[-3000:])
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr[-3000:]
    line = lines[0]
    assert "Traceback" not in line
    assert line.startswith("parley serve: error: ") and str(data_dir) in line, line
    return line


def test_read_only_data_dir_with_an_existing_database(tmp_path: Path) -> None:
    # The usual case: a server ran here before; now its directory is read-only.
    data_dir = tmp_path / "data"
    srv = ParleyProcess(port=free_port(), data_dir=data_dir, args=(), log_path=tmp_path / "log")
    srv.start()
    assert srv.stop(signal.SIGTERM) == 0
    assert (data_dir / "parley.db").exists()
    line = assert_one_clear_line(serve_read_only(data_dir), data_dir)
    assert "not writable" in line
    assert "Read-only file system" in line or "Permission denied" in line


def test_new_read_only_data_dir(tmp_path: Path) -> None:
    data_dir = tmp_path / "fresh"
    data_dir.mkdir()
    line = assert_one_clear_line(serve_read_only(data_dir), data_dir)
    assert "not writable" in line


def test_data_dir_through_a_file(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("not a directory")
    data_dir = tmp_path / "afile" / "data"
    line = assert_one_clear_line(run(serve_argv(data_dir), tmp_path), data_dir)
    assert "Not a directory" in line

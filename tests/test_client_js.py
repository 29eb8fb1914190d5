"""Runs the web client's unit tests (tests/js/*.test.mjs) with Node's built-in runner."""

import shutil
import subprocess
from pathlib import Path

import pytest

JS_TESTS = Path(__file__).parent / "js"


def test_client_unit_tests_pass() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is required for the web client's unit tests (apt-get install nodejs)")
    files = sorted(str(p) for p in JS_TESTS.glob("*.test.mjs"))
    assert files, "no client unit tests found in tests/js"
    result = subprocess.run([node, "--test", *files], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "# fail 0" in result.stdout

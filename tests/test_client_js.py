"""The web client's own checks: its unit tests (tests/js/*.test.mjs, Node's built-in runner)
and its JSDoc types (``tsc --noEmit`` over src/parley/web/js, configured by tsconfig.json)."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
JS_TESTS = Path(__file__).parent / "js"
CLIENT = REPO / "src" / "parley" / "web" / "js"
# TypeScript as pinned by the root package-lock.json (`npm ci` in the repository root).
TSC = REPO / "node_modules" / "typescript" / "bin" / "tsc"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def node_or_fail() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is required for the web client's checks (apt-get install nodejs)")
    return node


def tsc_or_skip() -> Path:
    """The pinned tsc; skipped locally without it, a failure under CI (.ci/run installs it)."""
    if not TSC.is_file():
        message = f"TypeScript is not installed ({TSC}): run `npm ci` in the repository root"
        if in_ci():
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return TSC


def test_client_unit_tests_pass() -> None:
    node = node_or_fail()
    files = sorted(str(p) for p in JS_TESTS.glob("*.test.mjs"))
    assert files, "no client unit tests found in tests/js"
    result = subprocess.run([node, "--test", *files], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "# fail 0" in result.stdout


def test_client_type_checks() -> None:
    """Every JSDoc type of the client holds (strict): tsc reports no error, and it checked
    every module under web/js (tsconfig.json takes in a new one too)."""
    node = node_or_fail()
    tsc = tsc_or_skip()
    result = subprocess.run(
        [node, str(tsc), "-p", str(REPO / "tsconfig.json"), "--noEmit", "--pretty", "false"]
        + ["--listFiles"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    lines = result.stdout.splitlines()
    # --listFiles prints every file checked (absolute paths); the rest of the output is errors
    errors = "\n".join(line for line in lines if not os.path.isabs(line)) + result.stderr[-2000:]
    assert result.returncode == 0, f"tsc found type errors:\n{errors[-8000:]}"
    checked = {Path(line).resolve() for line in lines if os.path.isabs(line)}
    modules = {p.resolve() for p in CLIENT.rglob("*.js")}
    assert modules, f"no client modules under {CLIENT}"
    assert modules <= checked, f"not type-checked: {sorted(str(p) for p in modules - checked)}"

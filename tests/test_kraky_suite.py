"""kraky 2023.8.17's own WebSocket tests, run against kraky_anyio.compat.

The sdist is fetched from the package index at test time (never committed:
no kraky code lives in this repository); its ``tests/test_ws.py`` runs in a
subprocess with one line changed, ``from kraky import KrakyWsClient`` ->
``from kraky_anyio.compat import KrakyWsClient``, and its own conftest. Its
``@pytest.mark.asyncio`` tests run with ``asyncio.run`` (tests/kraky_suite_runner.py)
instead of pytest-asyncio. Skipped, with the reason, when the index cannot be
reached. kraky's fixtures serve on ``localhost:5555`` (fixed by its conftest).
"""

from __future__ import annotations

import ast
import inspect
import os
import subprocess
import sys
import tarfile
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from kraky_anyio.compat import KrakyWsClient

VERSION = "2023.8.17"
IMPORT_LINE = "from kraky import KrakyWsClient"
SHIM_IMPORT = "from kraky_anyio.compat import KrakyWsClient"
TESTS = [
    "test_client",
    "test_send",
    "test_connect_disconnect",
    "test_subscribe",
    "test_unsubscribe",
]

# test_subscribe and test_unsubscribe compare the last frame kraky's server
# (another task, which never replies) recorded with a dict right after the
# call returned. They pass because the shim's calls return once the frame was
# written (the connection's ``task_status`` signal) and then sleep
# ``KrakyWsClient.pause_after_send``, kraky's 0.1 s (its ``_send`` slept
# after each write): test_compat checks both on virtual time.


@pytest.fixture(scope="module")
def sdist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """kraky's sdist, unpacked; skips when the package index is unreachable."""
    where = tmp_path_factory.mktemp("kraky")
    command = [sys.executable, "-m", "pip", "download", f"kraky=={VERSION}"]
    command += ["--no-binary", ":all:", "--no-deps", "-q", "-d", str(where)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    except subprocess.TimeoutExpired:
        pytest.skip(
            f"the package index did not answer within 300 s (pip download kraky=={VERSION})"
        )
    archives = list(where.glob(f"kraky-{VERSION}.tar.gz"))
    if done.returncode != 0 or not archives:
        unreachable = ("connection", "No matching distribution", "Could not find", "resolve")
        if any(word in done.stderr for word in unreachable):
            pytest.skip(f"the package index is unreachable (pip download kraky=={VERSION})")
        pytest.fail(f"pip download kraky=={VERSION} failed:\n{done.stderr[-2000:]}")
    with tarfile.open(archives[0]) as archive:
        archive.extractall(where, filter="data")
    return where / f"kraky-{VERSION}"


@pytest.fixture(scope="module")
def report(sdist: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, str]]:
    """Run kraky's test_ws.py against the shim; ``{test: (outcome, message)}``."""
    suite = tmp_path_factory.mktemp("kraky_suite")
    source = (sdist / "tests" / "test_ws.py").read_text()
    assert source.count(IMPORT_LINE) == 1, "kraky's import line moved: update IMPORT_LINE"
    (suite / "test_ws.py").write_text(source.replace(IMPORT_LINE, SHIM_IMPORT))
    (suite / "conftest.py").write_text((sdist / "tests" / "conftest.py").read_text())
    (suite / "pytest.ini").write_text("[pytest]\n")
    xml = suite / "report.xml"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), *sys.path])}
    # Only our runner: this project's plugins (looptime, trio, anyio) are not kraky's.
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    command = [sys.executable, "-m", "pytest", "-p", "kraky_suite_runner", "-p", "no:cacheprovider"]
    command += ["-c", str(suite / "pytest.ini"), "--rootdir", str(suite), f"--junitxml={xml}", "-q"]
    subprocess.run([*command, str(suite)], env=env, capture_output=True, timeout=300, check=False)
    outcomes: dict[str, tuple[str, str]] = {}
    for case in ET.parse(xml).getroot().iter("testcase"):
        outcome, message = "passed", ""
        for kind in ("failure", "error", "skipped"):
            node = case.find(kind)
            if node is not None:
                outcome, message = kind, node.get("message", "")
        outcomes[case.get("name", "")] = (outcome, message)
    return outcomes


def test_every_kraky_ws_test_is_accounted_for(report: dict[str, tuple[str, str]]) -> None:
    assert sorted(report) == sorted(TESTS)


@pytest.mark.parametrize("name", TESTS)
def test_kraky_ws_test_against_the_shim(name: str, report: dict[str, tuple[str, str]]) -> None:
    outcome, message = report[name]
    assert outcome == "passed", f"kraky's {name}: {outcome}: {message}"


def _kraky_signatures(sdist: Path) -> dict[str, list[tuple[str, Any]]]:
    """``{method: [(parameter, default or inspect.Parameter.empty), ...]}`` of
    kraky's ``KrakyWsClient``, read from its source without importing it."""
    tree = ast.parse((sdist / "kraky" / "ws.py").read_text())
    (cls,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "KrakyWsClient"]
    out: dict[str, list[tuple[str, Any]]] = {}
    for node in cls.body:
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        if node.name.startswith("_") and node.name != "__init__":
            continue
        params = [a.arg for a in node.args.args]
        defaults = [ast.literal_eval(d) for d in node.args.defaults]
        padded = [inspect.Parameter.empty] * (len(params) - len(defaults)) + defaults
        out[node.name] = list(zip(params, padded, strict=True))
    return out


def test_same_methods_parameters_and_defaults_as_kraky(sdist: Path) -> None:
    kraky = _kraky_signatures(sdist)
    assert len(kraky) == 11
    for method, params in kraky.items():
        ours = inspect.signature(getattr(KrakyWsClient, method)).parameters.values()
        assert [(p.name, p.default) for p in ours] == params, method
        kind = inspect.iscoroutinefunction(getattr(KrakyWsClient, method))
        assert kind == (method != "__init__"), method

"""The pytest plugin's fixtures, used directly (both backends, virtual time)
and from a user's test suite through the entry point (pytester)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from kraky_anyio import BookResync, KrakenConnection, KrakenError
from kraky_anyio.testing.market import MarketSimulator
from kraky_anyio.testing.server import FakeKrakenServer

pytest_plugins = ["pytester"]


@pytest.mark.anyio
async def test_client_sees_a_live_verified_market(
    kraken_client: KrakenConnection,
    kraken_exchange: FakeKrakenServer,
    kraken_market: MarketSimulator,
) -> None:
    assert kraken_client.connected and kraken_client.url == kraken_exchange.url
    async with kraken_client.messages() as notices, kraken_client.book("XBT/USD") as book:
        with anyio.fail_after(10):
            await book.wait_valid()
            await book.__anext__()
        kraken_market.corrupt_next_checksum("XBT/USD")
        with anyio.fail_after(10):
            async for msg in notices:
                if isinstance(msg, BookResync):
                    break
            await book.wait_valid()
        assert book.checksum_mismatches == 1

        await kraken_exchange.drop()
        with anyio.fail_after(60):
            async for msg in notices:
                if isinstance(msg, BookResync) and msg.reason == "reconnect":
                    break
            await book.wait_valid()
        assert kraken_client.generation == 2 and book.resyncs == 2


@pytest.mark.anyio
async def test_every_public_channel_flows(kraken_client: KrakenConnection) -> None:
    channels = {"ticker", "trade", "spread", "ohlc-5", "book-25"}
    async with kraken_client.messages(pair="ETH/USD") as stream:
        for subscription in (
            {"name": "ticker"},
            {"name": "trade"},
            {"name": "spread"},
            {"name": "ohlc", "interval": 5},
            {"name": "book", "depth": 25},
        ):
            await kraken_client.subscribe(subscription, ["ETH/USD"])
        seen: set[str] = set()
        with anyio.fail_after(60):
            async for msg in stream:
                if isinstance(msg, list):
                    seen.add(msg[-2])
                    if seen == channels:
                        break


@pytest.mark.anyio
async def test_exchange_accepts_only_the_simulated_pairs(kraken_client: KrakenConnection) -> None:
    with pytest.raises(KrakenError, match="Currency pair not supported SOL/USD"):
        await kraken_client.subscribe({"name": "ticker"}, ["SOL/USD"])


USER_TESTS = """
import anyio
import pytest
import trio.testing

from kraky_anyio.testing.market import MarketSimulator


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request):
    if request.param == "trio":
        return ("trio", {"clock": trio.testing.MockClock(autojump_threshold=0)})
    return "asyncio"


@pytest.fixture
def kraken_market():
    return MarketSimulator(["SOL/USD"], seed=42)


@pytest.fixture
def kraken_market_interval():
    return 0.01


@pytest.mark.anyio
async def test_bot(kraken_client, kraken_market):
    async with kraken_client.book("SOL/USD", 25) as book:
        with anyio.fail_after(10):
            await book.wait_valid()
            for _ in range(5):
                await book.__anext__()
        assert len(book.asks) == 25 and kraken_market.steps > 0
"""


def test_plugin_is_registered_and_overridable(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=USER_TESTS)
    # A run of its own: the plugin comes from the entry point, as for a user,
    # with every other installed plugin too (looptime's included).
    options = ("-p", "no:cacheprovider")
    result = pytester.runpytest_inprocess(*options)
    result.assert_outcomes(passed=2)
    # Without the entry point's plugin the fixtures are unknown.
    # (looptime's plugin off too: without ours, nothing unregisters it.)
    result = pytester.runpytest_inprocess(
        *options, "-p", "no:kraky_anyio", "-p", "no:looptime_plugin"
    )
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["*fixture 'kraken_client' not found*"])


def test_plugin_imports_nothing_heavy() -> None:
    code = (
        "import sys; import kraky_anyio.testing.plugin; "
        "heavy = {'rich', 'kraky_anyio.testing.market', 'kraky_anyio.cli'} & set(sys.modules); "
        "print(sorted(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stderr


# -- the suite's own recordings: skipped with one reason, or failed in CI --------


def test_a_missing_recording_skips_with_one_reason_or_fails_when_required(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from conftest import REQUIRE_RECORDINGS, load_recording, missing_recording_reason

    monkeypatch.delenv(REQUIRE_RECORDINGS, raising=False)
    with pytest.raises(pytest.skip.Exception) as skipped:
        load_recording("kraken-v1-book10-xbtusd.json", tmp_path)
    reason = str(skipped.value)
    assert reason == missing_recording_reason(tmp_path)
    assert str(tmp_path) in reason and "python-kraken-sdk" in reason and "shared/" in reason

    monkeypatch.setenv(REQUIRE_RECORDINGS, "1")
    with pytest.raises(pytest.fail.Exception, match=REQUIRE_RECORDINGS):
        load_recording("kraken-v1-book10-xbtusd.json", tmp_path)

    (tmp_path / "x.json").write_text('{"init": []}')
    assert load_recording("x.json", tmp_path) == {"init": []}


# -- the README's "Testing your bot" runs as written, with plain pytest ----------

README = Path(__file__).resolve().parents[1] / "README.md"


def _readme_example(heading: str) -> str:
    """The first ``python`` block after ``heading`` in the README."""
    text = README.read_text()
    after = text[text.index(f"\n{heading}\n") :]
    start = after.index("```python\n") + len("```python\n")
    return after[start : after.index("```", start)]


def test_readme_testing_your_bot_runs_with_plain_pytest(pytester: pytest.Pytester) -> None:
    example = _readme_example("## Testing your bot")
    assert "@pytest.mark.anyio" in example
    pytester.makepyfile(test_readme=example)
    # A fresh process with nothing but pytest's defaults and the installed
    # plugins (looptime's and ours from their entry points).
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) >= 1, result.stdout.str()
    assert not outcomes.get("failed") and not outcomes.get("errors"), result.stdout.str()


def test_the_testing_tools_are_exported() -> None:
    import kraky_anyio.testing as testing
    from kraky_anyio.testing import engine, market, plugin

    assert testing.MarketSimulator is market.MarketSimulator
    assert testing.run_market is market.run_market
    assert testing.Publication is market.Publication
    assert testing.FakeMatchingEngine is engine.FakeMatchingEngine
    assert testing.kraken_exchange is plugin.kraken_exchange
    assert testing.kraken_client is plugin.kraken_client
    assert testing.kraken_market is plugin.kraken_market
    for name in testing.__all__:
        assert getattr(testing, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        testing.nope  # noqa: B018


# -- what a newcomer installs is what CI tests -------------------------------------

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readmes_test_command_from_a_test_only_install() -> None:
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    # [test] holds everything the suite imports: the CLI's rich, auth's httpx, zstandard, trio.
    assert "kraky-anyio[auth,cli,record,trio]" in extras["test"]
    assert extras["trio"] and project["license-files"] == ["LICENSE"]
    assert "MIT License" in (ROOT / "LICENSE").read_text()
    assert {"Homepage", "Source", "Issues"} <= set(project["urls"])
    # The README's two commands, and .ci/run running the second verbatim
    # (it finds it the same way: the first `pip install` line after "Run the tests").
    readme = README.read_text()
    tests_section = readme[readme.index("\nRun the tests") :]
    command = next(line for line in tests_section.splitlines() if line.startswith("pip install"))
    assert command == 'pip install -e ".[test]" && python -m pytest -q'
    assert 'pip install -e ".[cli]" && kraky-anyio demo' in readme
    ci = (ROOT / ".ci" / "run").read_text()
    assert 'eval "$TEST_COMMAND"' in ci and "KRAKY_REQUIRE_FIXTURES=1" in ci
    assert ci.index('eval "$TEST_COMMAND"') < ci.index('-e ".[dev]"')  # before the tools

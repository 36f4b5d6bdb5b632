"""A pytest plugin (``-p kraky_suite_runner``) for running kraky's own test
suite against :mod:`kraky_anyio.compat`: it runs tests marked
``@pytest.mark.asyncio`` with ``asyncio.run``, which is all kraky's suite
needs of pytest-asyncio (one loop per test, function-scoped sync fixtures).
Used by ``tests/test_kraky_suite.py``; not collected itself."""

from __future__ import annotations

import asyncio
import inspect

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "asyncio: run this coroutine test with asyncio.run")


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    test = pyfuncitem.obj
    if pyfuncitem.get_closest_marker("asyncio") is None or not inspect.iscoroutinefunction(test):
        return None
    wanted = inspect.signature(test).parameters
    arguments = {name: value for name, value in pyfuncitem.funcargs.items() if name in wanted}
    asyncio.run(test(**arguments))
    return True

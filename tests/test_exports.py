"""The top-level package: every name in ``__all__`` imports, and each one has
its entry in the API reference (docs/reference/, rendered by mkdocstrings)."""

from __future__ import annotations

import ast
import importlib
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import kraky_anyio

REFERENCE = Path(__file__).resolve().parent.parent / "docs" / "reference"
# "::: module" and the options block indented under it.
DIRECTIVE = re.compile(r"^::: ([\w.]+)\n((?:    .*\n)*)", re.MULTILINE)


def rendered_members() -> dict[str, set[str] | None]:
    """Module -> the members its reference page renders (``None``: all public
    ones); a page with ``members: false`` renders none."""
    pages: dict[str, set[str] | None] = {}
    for page in sorted(REFERENCE.rglob("*.md")):
        for module, options in DIRECTIVE.findall(page.read_text(encoding="utf-8")):
            if re.search(r"^\s+members: false\s*$", options, re.MULTILINE):
                pages.setdefault(module, set())
                continue
            listed = re.search(r"^(\s+)members:\n((?:\1  +- .*\n)+)", options, re.MULTILINE)
            if listed:
                names = set(re.findall(r"- (\w+)", listed.group(2)))
                known = pages.get(module)
                pages[module] = names if known is None else known | names
            else:
                pages[module] = None
    return pages


def defining_module(name: str, obj: object) -> str:
    """Where ``obj`` is documented: its defining module for a class or a
    function; for a constant or a type alias (``typing`` objects), the module
    whose own code assigns it."""
    module = getattr(obj, "__module__", None)
    defined = isinstance(obj, type) or callable(obj)
    if defined and isinstance(module, str) and module.startswith("kraky_anyio."):
        return module
    candidates = []
    for mod_name, mod in sorted(sys.modules.items()):
        if not isinstance(mod, ModuleType) or not mod_name.startswith("kraky_anyio."):
            continue
        if vars(mod).get(name) is obj and name in assigned_names(mod):
            candidates.append(mod_name)
    assert len(candidates) == 1, f"{name} is assigned in {candidates}"
    return candidates[0]


def assigned_names(module: ModuleType) -> set[str]:
    """Names a module's top-level code assigns (not imports)."""
    if module.__file__ is None:
        return set()
    tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
    names = set()
    for node in tree.body:
        if isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def test_every_export_imports() -> None:
    assert len(set(kraky_anyio.__all__)) == len(kraky_anyio.__all__)
    for name in kraky_anyio.__all__:
        assert getattr(kraky_anyio, name) is not None, name
    namespace: dict[str, object] = {}
    exec("from kraky_anyio import *", namespace)
    assert set(kraky_anyio.__all__) <= namespace.keys()


def test_the_new_exports_are_the_modules_objects() -> None:
    from kraky_anyio.auth import KrakenTokenProvider
    from kraky_anyio.fanout import MessageBatches
    from kraky_anyio.live_book import LiveBook, ResyncPolicy
    from kraky_anyio.options import ConnectionOptions
    from kraky_anyio.status import ConnectionStatus

    assert kraky_anyio.KrakenTokenProvider is KrakenTokenProvider
    assert kraky_anyio.MessageBatches is MessageBatches
    assert kraky_anyio.LiveBook is LiveBook
    assert kraky_anyio.ResyncPolicy is ResyncPolicy
    assert kraky_anyio.ConnectionOptions is ConnectionOptions
    assert kraky_anyio.ConnectionStatus is ConnectionStatus


def test_importing_the_package_does_not_import_httpx() -> None:
    # KrakenTokenProvider is exported at the top, but httpx is needed only
    # when a token is fetched (the ``auth`` extra).
    code = "import sys, kraky_anyio; print('httpx' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_every_export_is_in_the_api_reference() -> None:
    pages = rendered_members()
    missing = []
    for name in kraky_anyio.__all__:
        module = defining_module(name, getattr(kraky_anyio, name))
        importlib.import_module(module)
        if module not in pages:
            missing.append(f"{name} ({module}: no reference page)")
            continue
        members = pages[module]
        if members is not None and name not in members:
            missing.append(f"{name} ({module}'s page leaves it out)")
    assert missing == []


def test_every_reference_page_names_a_module_that_exists() -> None:
    pages = rendered_members()
    assert "kraky_anyio.connection" in pages
    for module in pages:
        importlib.import_module(module)


def test_the_docs_build_links_into_every_rendered_module() -> None:
    # docs/_griffe_rst_roles.py links a docstring's role only into the modules
    # mkdocs.yml lists as rendered; the list must match the reference pages,
    # or links dangle (mkdocs --strict) or turn silently into plain text.
    config = (REFERENCE.parent.parent / "mkdocs.yml").read_text(encoding="utf-8")
    block = re.search(r"rendered_modules:\n((?:\s+- [\w.]+\n)+)", config)
    assert block is not None
    listed = set(re.findall(r"- ([\w.]+)", block.group(1)))
    assert listed == set(rendered_members())

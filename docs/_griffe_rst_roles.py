"""Griffe extension for the docs build: render the Sphinx roles of our docstrings.

The package's docstrings use reST roles (``:class:`~kraky_anyio.errors.KrakenError```,
``:meth:`wait_connected```, ...). mkdocstrings renders docstrings as Markdown,
where those roles would show up literally. This extension rewrites each role,
before the docstrings are rendered, into:

* a cross-reference (``[`KrakenError`][kraky_anyio.errors.KrakenError]``) when
  the target resolves to a public object of the package that the API reference
  renders;
* a plain code span otherwise (``anyio.fail_after``, private objects, ...).

It also turns reST's ``text::`` literal-block marker into ``text:`` (the
indented block that follows is a Markdown code block already), and labels a
function decorated with ``asynccontextmanager`` "async context manager"
rather than "async" (it is used with ``async with``, not awaited).

Only the docs build loads this file (``mkdocs.yml``: ``extensions``); it is not
part of the package.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(class|meth|func|mod|data|attr|exc|obj|const):`([^`]+)`")
_LITERAL_MARKER = re.compile(r"(\S)::[ \t]*$", re.MULTILINE)
_ALONE_MARKER = re.compile(r"^[ \t]*::[ \t]*$", re.MULTILINE)


def _public(path: str) -> bool:
    return not any(part.startswith("_") for part in path.split("."))


class RstRoles(griffe.Extension):
    """Rewrite reST roles in every docstring of the loaded package."""

    def __init__(self, rendered_modules: list[str] | None = None) -> None:
        super().__init__()
        # Modules whose members the API reference renders: only links into
        # them can resolve (mkdocs --strict fails on a dangling link).
        self.rendered = tuple(rendered_modules or ())

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        self._pkg = pkg
        for obj in self._walk(pkg):
            if obj.is_function and any(
                str(d.callable_path).endswith("asynccontextmanager")
                for d in obj.decorators  # type: ignore[attr-defined]
            ):
                obj.labels.discard("async")
                obj.labels.add("async context manager")
            if obj.docstring is not None:
                obj.docstring.value = self._rewrite(obj, obj.docstring.value)

    def _walk(self, obj: griffe.Object) -> Any:
        yield obj
        for member in list(obj.members.values()):
            if member.is_alias:
                continue
            yield from self._walk(member)  # type: ignore[arg-type]

    # -- resolution ----------------------------------------------------------

    def _lookup(self, path: str) -> griffe.Object | None:
        pkg = self._pkg
        if path == pkg.path:
            return pkg
        if not path.startswith(pkg.path + "."):
            return None
        try:
            found = pkg[path[len(pkg.path) + 1 :]]
        except (KeyError, ValueError, griffe.AliasResolutionError, griffe.CyclicAliasError):
            return None
        if found.is_alias:
            try:
                found = found.final_target
            except (griffe.AliasResolutionError, griffe.CyclicAliasError):
                return None
        return found  # type: ignore[no-any-return]

    def _resolve(self, obj: griffe.Object, target: str) -> str | None:
        scopes: list[str] = []
        scope: griffe.Object | None = obj
        while scope is not None:
            scopes.append(scope.path)
            scope = scope.parent
        candidates = [target] + [f"{s}.{target}" for s in scopes]
        for candidate in candidates:
            found = self._lookup(candidate)
            if found is None:
                continue
            path = found.path
            if not _public(path):
                return None
            module = found if found.is_module else found.module
            if module.path not in self.rendered:
                return None
            return path
        return None

    # -- rewriting -----------------------------------------------------------

    def _rewrite(self, obj: griffe.Object, text: str) -> str:
        def role(match: re.Match[str]) -> str:
            kind, target = match.group(1), match.group(2).strip()
            short = target.startswith("~")
            target = target.lstrip("~.")
            shown = target.rsplit(".", 1)[-1] if short else target
            if kind in ("meth", "func"):
                shown += "()"
            path = self._resolve(obj, target)
            if path is None:
                return f"`{shown}`"
            return f"[`{shown}`][{path}]"

        text = _ROLE.sub(role, text)
        text = _ALONE_MARKER.sub("", text)
        return _LITERAL_MARKER.sub(r"\1:", text)

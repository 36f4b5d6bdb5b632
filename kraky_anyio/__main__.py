"""``python -m kraky_anyio``: the ``kraky-anyio`` command line."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())

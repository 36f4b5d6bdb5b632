"""Profile one benchmark client (cProfile) on a flood from the benchmark server.

    python bench/profile_client.py [--kind kraky_anyio-asyncio] [--n 50000] [--top 25]

Starts bench/_server.py, runs ``python -m cProfile bench/_client.py --mode flood``
and prints the functions with the most own time (``tottime``) and the most
cumulative time. cProfile roughly doubles the cost of every Python call, so
read the shares, not the absolute times. Used to find where kraky_anyio
spends the time it takes over the raw client (bench/README.md).
"""

from __future__ import annotations

import argparse
import io
import pstats
import tempfile
from pathlib import Path

from _common import BENCH, PYTHON, Procs, Server


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--kind", default="kraky_anyio-asyncio")
    p.add_argument("--n", type=int, default=50000)
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--save", help="keep the .prof file here")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp, Procs() as procs:
        prof = Path(args.save) if args.save else Path(tmp) / "client.prof"
        server = Server(procs)
        code, out, err = procs.run(
            [
                PYTHON,
                "-m",
                "cProfile",
                "-o",
                str(prof),
                str(BENCH / "_client.py"),
                "--watch-stdin",
                "--kind",
                args.kind,
                "--mode",
                "flood",
                "--url",
                server.url(f"/flood?n={args.n}"),
                "--timeout",
                "300",
            ],
            320,
        )
        print(out.strip())
        if code != 0:
            print(err[-2000:])
            return 1
        for sort in ("tottime", "cumulative"):
            buf = io.StringIO()
            st = pstats.Stats(str(prof), stream=buf)
            st.sort_stats(sort).print_stats(args.top)
            text = buf.getvalue()
            print(f"== by {sort}")
            print(text[text.find("   ncalls") :])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""One npc tree's CLI as a long-lived process, for the differential test (bench/redteam.py).

    <tree>/.venv/bin/python bench/redteam_worker.py

Reads JSON lines ``{"cwd": DIR, "argv": [...], "outputs": [PATH, ...]}`` on stdin, runs
``npc.cli.main(argv)`` in ``cwd`` with captured streams, and answers one JSON line per request:
``{"rc": N, "stdout": TEXT, "stderr": TEXT, "files": {PATH: TEXT or null}}`` (each listed
output file is read, then removed). Running in-process keeps a request at milliseconds; a
per-load memo that leaked from one load into the next would show up as a difference too.
"""

from __future__ import annotations

import json
import os
import sys

from click.testing import CliRunner


def _serve() -> None:
    from npc.cli import main  # noqa: PLC0415 - the tree's npc, once the venv is the one running

    runner = CliRunner()
    out = sys.stdout
    for line in sys.stdin:
        request = json.loads(line)
        os.chdir(request["cwd"])
        with runner.isolation() as streams:
            try:
                rc = main(list(request["argv"]))
            except SystemExit as exc:  # a command calling sys.exit is a difference too
                rc = 1000 + (exc.code if isinstance(exc.code, int) else 1)
            sys.stdout.flush()
            sys.stderr.flush()
            stdout = streams[0].getvalue().decode("utf-8", "replace")
            stderr = streams[1].getvalue().decode("utf-8", "replace")
        files: dict[str, str | None] = {}
        for path in request.get("outputs", ()):
            try:
                with open(path, "rb") as handle:
                    files[path] = handle.read().decode("utf-8", "replace")
                os.remove(path)
            except FileNotFoundError:
                files[path] = None
        out.write(json.dumps({"rc": rc, "stdout": stdout, "stderr": stderr, "files": files}))
        out.write("\n")
        out.flush()


if __name__ == "__main__":
    _serve()

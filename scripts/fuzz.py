#!/usr/bin/env python3
"""Long fuzzing run: the suite's schemathesis test (tests/isolation/test_fuzz.py) with many
more examples per API operation (default 200; `--examples N` or FUZZ_EXAMPLES=N).

Same database rules as the test command: embedded PostgreSQL unless TEST_DATABASE_URL is set.
Other arguments go to pytest (e.g. -k items, -x). Runs are derandomized: to explore new
inputs rather than repeat the same ones, raise the count.
"""

import os
import sys

from _bootstrap import ensure_venv, exec_in_venv

DEFAULT_EXAMPLES = "200"


def main(argv: list[str]) -> None:
    examples = os.environ.get("FUZZ_EXAMPLES", DEFAULT_EXAMPLES)
    rest = []
    args = iter(argv)
    for arg in args:
        if arg == "--examples":
            examples = next(args, examples)
        elif arg.startswith("--examples="):
            examples = arg.split("=", 1)[1]
        else:
            rest.append(arg)
    if not examples.isdigit() or int(examples) < 1:
        sys.exit(f"--examples must be a positive integer, not {examples!r}")
    os.environ["FUZZ_EXAMPLES"] = examples
    print(f"[tenantry] fuzzing every operation with {examples} examples each", flush=True)
    ensure_venv()
    exec_in_venv("pytest", ["tests/isolation/test_fuzz.py", "-p", "no:cacheprovider", *rest])


if __name__ == "__main__":
    main(sys.argv[1:])

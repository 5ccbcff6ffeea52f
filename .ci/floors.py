"""Print the lowest allowed version of each runtime dependency as an exact pin, one a line.

Used by .ci/floors.sh. Every runtime dependency must have a `>=` floor: a dependency
without one would let CI pass on whatever version happens to be newest.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

FLOOR = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*(?:\[[^\]]*\])?)\s*[^;]*?>=\s*([^,;\s]+)")


def main() -> int:
    project = tomllib.loads(Path("pyproject.toml").read_text())["project"]
    extras = sys.argv[1:]
    deps = list(project["dependencies"])
    for extra in extras:
        deps += project["optional-dependencies"][extra]
    for dep in deps:
        match = FLOOR.match(dep)
        if match is None:
            print(f"floors: {dep!r} has no >= floor in pyproject.toml", file=sys.stderr)
            return 1
        print(f"{match.group(1)}=={match.group(2)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

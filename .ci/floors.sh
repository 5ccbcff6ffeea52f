#!/usr/bin/env bash
# Install every dependency floor of pyproject.toml EXACTLY, all together, in a fresh venv,
# then run `videogen --help` and one sandbox job. Fails when a floor is wrong: too low
# for the code (an import or call fails), or inconsistent with another floor (pip cannot
# resolve the exact pins together, e.g. typer 0.28 needs rich>=13.8).
#   .ci/floors.sh                     runtime dependencies
#   .ci/floors.sh postgres supabase   plus these extras (their modules must import)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

mapfile -t pins < <("$PYTHON" .ci/floors.py "$@")
echo "floors: ${pins[*]}"
"$PYTHON" -m venv "$work/venv"
pip=("$work/venv/bin/python" -m pip install -q --disable-pip-version-check)
"${pip[@]}" "${pins[@]}"
"${pip[@]}" --no-deps -e .
"$work/venv/bin/python" -m pip check

# A clean environment: the sandbox in a temporary home, no real backend or fal key.
run() {
  env -u FAL_KEY -u SUPABASE_URL -u SUPABASE_SERVICE_ROLE_KEY -u VIDEOGEN_DATABASE_URL \
    -u VIDEOGEN_PROVIDER VIDEOGEN_HOME="$work/home" VIDEOGEN_SIM_SPEED=1000 \
    "$work/venv/bin/videogen" "$@"
}
run --version
run --help >/dev/null
# A usage error goes through cli/main.py's error path (typer's public exception class).
code=0; run status --no-such-flag 2>/dev/null || code=$?
[ "$code" = 2 ] || { echo "floors: a usage error exited $code, not 2" >&2; exit 1; }
run generate --prompt "floors check" --duration 4s --watch
run jobs >/dev/null      # rich tables
run credits >/dev/null
for extra in "$@"; do
  case "$extra" in
    postgres) "$work/venv/bin/python" -c "import videogen_cli.storage.postgres" ;;
    supabase) "$work/venv/bin/python" -c "import videogen_cli.storage.supabase" ;;
  esac
done
echo "floors: ok"

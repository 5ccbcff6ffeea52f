#!/usr/bin/env bash
# Make sure PostgreSQL server binaries (initdb, pg_ctl) exist for tests/backends, which
# start a throwaway cluster of their own. Installs Debian's `postgresql` when none is
# found and we are root; otherwise does nothing (the tests then skip with a reason, or
# fail under CI). `make postgres` runs this, and `make test` depends on it.
set -euo pipefail

have_initdb() {
  command -v initdb >/dev/null 2>&1 && return 0
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null
}

if have_initdb; then
  exit 0
fi
if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-postgres: no initdb found; install PostgreSQL (Debian: apt-get install" \
    "postgresql) or set VIDEOGEN_TEST_DATABASE_URL to a server the tests may create" \
    "databases on" >&2
  exit 0
fi

# The tests run their own cluster: keep the package from creating and starting a system
# one that would only hold a port and memory.
mkdir -p /etc/postgresql-common/createcluster.d
echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.d/50-videogen-tests.conf

export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends postgresql

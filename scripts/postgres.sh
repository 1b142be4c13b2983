#!/usr/bin/env bash
# Install (if missing) and start Debian's PostgreSQL, then create the test role and database.
# PostgreSQL refuses to run as root, so the packaged cluster is started with pg_ctlcluster.
set -euo pipefail

if ! command -v pg_ctlcluster >/dev/null 2>&1 || ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
  echo "postgres.sh: installing PostgreSQL" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq postgresql >/dev/null
fi

cluster=$(pg_lsclusters --no-header | head -n 1)
if [ -z "$cluster" ]; then
  version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
  pg_createcluster "$version" main >/dev/null
  cluster=$(pg_lsclusters --no-header | head -n 1)
fi
version=$(echo "$cluster" | awk '{print $1}')
name=$(echo "$cluster" | awk '{print $2}')
port=$(echo "$cluster" | awk '{print $3}')
status=$(echo "$cluster" | awk '{print $4}')
if [ "$status" != "online" ]; then
  pg_ctlcluster "$version" "$name" start
fi

for _ in $(seq 1 30); do
  if su postgres -c "psql -p $port -qtAc 'select 1'" >/dev/null 2>&1; then break; fi
  sleep 1
done

su postgres -c "psql -p $port -qtAc \"select 1 from pg_roles where rolname='kuaishu'\"" | grep -q 1 \
  || su postgres -c "psql -p $port -qc \"create role kuaishu login password 'kuaishu' createdb\""
su postgres -c "psql -p $port -qtAc \"select 1 from pg_database where datname='kuaishu_test'\"" | grep -q 1 \
  || su postgres -c "createdb -p $port -O kuaishu kuaishu_test"

echo "postgresql+psycopg://kuaishu:kuaishu@127.0.0.1:$port/kuaishu_test"

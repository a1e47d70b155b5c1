#!/usr/bin/env bash
# The whole test suite, from a fresh clone on a fresh machine: installs what the tests need
# (the Python packages from uv.lock), makes sure the real Redis and PostgreSQL they talk to are
# up (starting or installing them), then runs ruff, mypy, the benchmarks' short variants and
# pytest, and beside it the clock-sensitive tests again under a clock 400 days ahead. Fails
# loudly; never skips a test for lack of a service.
#   bash tests/run.sh            everything (what CI runs)
#   bash tests/run.sh --quick    ruff, mypy and the in-process tests (not marked slow)
#   bash tests/run.sh ARGS...    ruff, mypy and pytest ARGS (a module, -k, -m ...)
set -euo pipefail
cd "$(dirname "$0")/.."

QUICK=
if [ "${1:-}" = "--quick" ]; then QUICK=1; shift; fi
UV_VERSION=0.13.10  # installs from uv.lock (README "The lock" says how to refresh it)

REDIS_HOST=127.0.0.1 REDIS_PORT=6379
PG_HOST=127.0.0.1 PG_PORT=5432 PG_DB=test

say() { printf '\n== %s (at %d s)\n' "$*" "$SECONDS"; }
reachable() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }
wait_for() {
  for _ in $(seq 1 30); do reachable "$1" "$2" && return 0; sleep 1; done
  return 1
}
apt_install() {
  command -v apt-get >/dev/null || { echo "FATAL: $* missing and no apt-get to install it" >&2; exit 1; }
  [ -n "${APT_UPDATED:-}" ] || { apt-get update -qq; APT_UPDATED=1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

say "Python environment (.venv, from uv.lock)"
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/uv --version 2>/dev/null | grep -qx "uv $UV_VERSION.*" \
  || .venv/bin/python -m pip install -q --disable-pip-version-check "uv==$UV_VERSION"
# --frozen: exactly the lock, never re-resolved (tests/test_lock.py fails when the lock and
# pyproject.toml disagree); --inexact: keeps uv itself, which the lock does not list;
# --compile-bytecode: as pip does (uv does not by default, and with PYTHONDONTWRITEBYTECODE set
# every process the tests and benchmarks start compiled SQLAlchemy anew: 1.2 s for an import)
.venv/bin/uv sync -q --frozen --inexact --compile-bytecode --extra test

say "Redis on $REDIS_HOST:$REDIS_PORT"
if ! reachable $REDIS_HOST $REDIS_PORT; then
  command -v redis-server >/dev/null || apt_install redis-server
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port $REDIS_PORT --save "" \
    --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_for $REDIS_HOST $REDIS_PORT || { echo "FATAL: Redis did not start" >&2; exit 1; }
fi
echo "reachable"

say "PostgreSQL on $PG_HOST:$PG_PORT, database $PG_DB"
if ! reachable $PG_HOST $PG_PORT; then
  command -v pg_ctlcluster >/dev/null || apt_install postgresql
  cluster=$(ls /etc/postgresql | sort -V | tail -n 1)
  pg_ctlcluster --skip-systemctl-redirect "$cluster" main start || true
  wait_for $PG_HOST $PG_PORT || { echo "FATAL: PostgreSQL did not start" >&2; exit 1; }
fi
pg_login() {
  .venv/bin/python -c "import psycopg; psycopg.connect('postgresql://postgres@$PG_HOST:$PG_PORT/$PG_DB').close()" 2>/dev/null
}
if ! pg_login; then
  # A freshly installed cluster: trust local TCP logins and create the test database.
  hba=$(ls /etc/postgresql/*/main/pg_hba.conf | sort -V | tail -n 1)
  grep -q '^host all all 127.0.0.1/32 trust' "$hba" \
    || sed -i '1i host all all 127.0.0.1/32 trust' "$hba"
  su postgres -c "psql -qc 'select pg_reload_conf()'" >/dev/null
  su postgres -c "createdb $PG_DB" 2>/dev/null || true
  pg_login || { echo "FATAL: cannot log in to PostgreSQL database $PG_DB" >&2; exit 1; }
fi
echo "reachable"

export FEEDSVC_TEST_REDIS_URL="${FEEDSVC_TEST_REDIS_URL:-redis://$REDIS_HOST:$REDIS_PORT/0}"
export FEEDSVC_TEST_DATABASE_URL="${FEEDSVC_TEST_DATABASE_URL:-postgresql://postgres@$PG_HOST:$PG_PORT/$PG_DB}"

say "ruff"
.venv/bin/ruff check .

say "mypy"
# strict on feedsvc/ ([tool.mypy] in pyproject.toml)
.venv/bin/mypy

if [ -n "$QUICK" ]; then
  say "pytest, in-process tests (-m 'not slow')"
  exec .venv/bin/python -m pytest -n 2 -p no:cacheprovider -m "not slow" "$@"
fi

say "nginx, wrk, ss, taskset, chromium, libfaketime and cc"
# nginx: tests/test_nginx.py runs config/nginx/feedsvc.conf; wrk: bench/serve.py; ss: counting
# connections in tests/test_nginx.py; taskset: bench/reach.py pins the server and wrk apart;
# chromium: the browser tests (tests/test_hostile_articles.py, tests/test_reach_stream.py);
# libfaketime and a C compiler: the clock-sensitive tests again, 400 days ahead
# (tests/clock_ahead/run.sh)
command -v nginx >/dev/null || apt_install nginx-light
command -v wrk >/dev/null || apt_install wrk
command -v ss >/dev/null || apt_install iproute2
command -v taskset >/dev/null || apt_install util-linux
command -v chromium >/dev/null || apt_install chromium
ls /usr/lib/*/faketime/libfaketime.so.1 >/dev/null 2>&1 || apt_install libfaketime
command -v cc >/dev/null || apt_install gcc libc6-dev
echo "installed"

if [ $# -eq 0 ]; then
  # The short variants of bench/ (each exits non-zero when over its budget, judged on CPU time
  # or a ratio against a reference measured in the same run, so that a busy neighbour cannot
  # fail them; bench/README.md "What the --quick runs judge"); the full runs and their figures
  # are in bench/README.md. Skipped when arguments pick tests. (Run beside pytest they took the
  # cores the tests needed: the whole command was longer, not shorter.)
  say "bench, short variants"
  bench() { local start=$SECONDS; .venv/bin/python "bench/$1" "${@:2}"; echo "(bench/$1: $((SECONDS - start)) s)"; }
  bench import_rate.py --quick
  bench import_large.py --quick
  bench store_queries.py --quick
  bench archives.py --quick
  bench freshness.py --quick
  bench api_freshness.py --quick
  bench rebuild.py --quick --repeat 5
  bench tag_feeds.py --quick --repeat 5
  bench serve.py --quick --only granian/near
  bench soak.py --quick
  bench import_startup.py --quick
  bench hostile_clients.py --quick
  bench reach.py --quick
  bench reach_rollup.py --quick
fi

if [ $# -eq 0 ]; then
  # Dates in the tests come from the clock they run under (or one they inject): the modules
  # that depend on the day (reach, archives, embargo, future dates, leases) pass on any day.
  # They run beside the whole suite (their own keys and schemas), while its slow tests wait on
  # their processes; their output is shown after it.
  say "pytest, the clock-sensitive modules with the calendar 400 days ahead (libfaketime), in the background"
  shifted_log=$(mktemp)
  bash tests/clock_ahead/run.sh 400 .venv/bin/python -m pytest -n 2 -p no:cacheprovider \
    tests/test_reach_counts.py tests/test_reach_rollup.py tests/test_reach_store.py \
    tests/test_reach.py tests/test_archives.py tests/test_embargo.py tests/test_future_dates.py \
    tests/test_refresh.py tests/test_cache_coordination.py >"$shifted_log" 2>&1 &
  shifted=$!
fi

say "pytest"
# 6 workers on 2 cores: the slow tests (run first) spend most of their time waiting on the
# processes they started; 3 workers kept the cores half idle (5 min 54 s with 4, 4 min 58 s
# with 6, 7 min with 3)
status=0
.venv/bin/python -m pytest -n 6 -p no:cacheprovider "$@" || status=$?

if [ $# -eq 0 ]; then
  say "pytest, the clock-sensitive modules 400 days ahead: their run"
  wait "$shifted" || status=$?
  cat "$shifted_log"
  rm -f "$shifted_log"
fi
exit "$status"

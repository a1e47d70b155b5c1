#!/usr/bin/env bash
# Runs a command with the calendar DAYS days ahead: Debian's libfaketime moves the wall clock of
# the command and of every process it starts (but the servers the tests start: their clocks
# stay the machine's, as the shared Redis and PostgreSQL do). The monotonic clock is not moved,
# so timeouts and sleeps last what they say (monotonic_sleep.c says why it is needed).
#   bash tests/clock_ahead/run.sh 400 .venv/bin/python -m pytest tests/test_reach_counts.py
set -euo pipefail
days=$1; shift
here="$(cd "$(dirname "$0")" && pwd)"
lib=$(ls /usr/lib/*/faketime/libfaketime.so.1 2>/dev/null | head -n 1)
[ -n "$lib" ] || { echo "FATAL: libfaketime is not installed (apt-get install faketime)" >&2; exit 1; }
shim="${TMPDIR:-/tmp}/feedsvc-monotonic-sleep-$(sha256sum "$here/monotonic_sleep.c" | cut -c1-12).so"
[ -f "$shim" ] || cc -shared -fPIC -O2 -o "$shim" "$here/monotonic_sleep.c" -ldl \
  || { echo "FATAL: cannot build $here/monotonic_sleep.c (a C compiler is needed)" >&2; exit 1; }
export LD_PRELOAD="$shim:$lib" FAKETIME="+${days}d" FAKETIME_DONT_FAKE_MONOTONIC=1 \
  FAKETIME_SKIP_CMDS=redis-server,postgres,initdb,pg_ctl,pg_basebackup,nginx,chromium,wrk
exec "$@"

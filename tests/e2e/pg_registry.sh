#!/usr/bin/env bash
# registry: postgresql
# The PostgreSQL backend's unit test (tests/unit/test_registry_pg.c, XB_BIN/test_registry_pg)
# against the private cluster lib.sh starts: it needs a server, so it runs here rather than as a
# unit_ ctest. Every cmocka test empties the database xboot's schema and migrates it again.
. "$(dirname "$0")/lib.sh"

[ "$XB_BACKEND" = postgresql ] || { echo "pg_registry.sh runs with XB_BACKEND=postgresql"; exit 1; }

# Bounded: the tests take about 10 s; a hang (a lock never released) must not hold ctest.
out=$(XB_PG_URL=$XB_PG_URL XB_PG_ADMIN_URL=$XB_PG_ADMIN_URL \
  timeout 60 "$XB_BIN/test_registry_pg" 2>&1)
rc=$?
printf '%s\n' "$out"
if [ "$rc" -eq 0 ]; then
  xb_ok "test_registry_pg passed"
else
  xb_bad "test_registry_pg exited with status $rc"
fi
# The password of the URL is in no message the program printed.
pg_password=${XB_PG_URL#postgresql://*:}
pg_password=${pg_password%%@*}
xb_lacks "no password in the output" "$out" "$pg_password"
xb_finish

#!/usr/bin/env bash
# The longer API fuzz run: schemathesis against openapi.yaml and a running stevedore.
# CI runs the short, seeded one (test/integration/fuzz.test.ts, 25 examples per
# operation, in process); this one takes more examples and, unless told, a new seed.
#
#   STEVEDORE_URL                 the server (default http://127.0.0.1:8080)
#   STEVEDORE_TOKEN               admin token (default: $STEVEDORE_STATE_DIR/admin-token,
#                                 /var/lib/stevedore/admin-token, as `serve` writes it)
#   STEVEDORE_FUZZ_MAX_EXAMPLES   generated cases per operation (--max-examples, default 200)
#   STEVEDORE_FUZZ_SEED           reproduce a run (schemathesis prints the seed it used)
#   STEVEDORE_FUZZ_SCHEMA         the document (default: the checkout's openapi.yaml;
#                                 "$STEVEDORE_URL/openapi.json" tests what the server serves)
#   STEVEDORE_FUZZ_CALLBACK_URL   what every generated callback_url becomes (test/fuzz/hooks.py);
#                                 default a loopback port nothing listens on
#   STEVEDORE_FUZZ_REPORT_DIR     JSON report, HAR of every request, replay cache
#                                 (default /tmp/stevedore-fuzz)
# Further arguments go to `st run`, e.g. `--checks all`, `--include-path-regex '^/v1/secrets'`,
# `--max-time 600`. Checks, phases and excluded operations: test/fuzz/schemathesis.toml.
# Replay a failure: cd "$STEVEDORE_FUZZ_REPORT_DIR" && <venv>/bin/st replay <id>.
#
# The server runs what the fuzzer gets accepted. Jobs name generated image references,
# git URLs and registries, and workers act on them: point this at a development server
# whose workers reach no network you care about, or at `stevedore api` alone (no worker
# on its Redis), as the CI test does. Callback URLs are always rewritten (hooks.py), and
# GET /v1/images/inspect is pinned to debian:bookworm-slim (served by the docker.io mirror).
. "$(dirname "$0")/lib.sh"
"$SCRIPTS_DIR/install-fuzz.sh"
ST="$STEVEDORE_CACHE_DIR/tools/schemathesis-$SCHEMATHESIS_VERSION/bin/st"

url="${STEVEDORE_URL:-http://127.0.0.1:8080}"
url="${url%/}"
token="${STEVEDORE_TOKEN:-}"
if [ -z "$token" ]; then
  token_file="${STEVEDORE_STATE_DIR:-/var/lib/stevedore}/admin-token"
  [ -r "$token_file" ] || die "no STEVEDORE_TOKEN and no readable $token_file"
  token=$(tr -d '[:space:]' < "$token_file")
fi
schema="${STEVEDORE_FUZZ_SCHEMA:-$PROJECT_DIR/openapi.yaml}"
report_dir="${STEVEDORE_FUZZ_REPORT_DIR:-/tmp/stevedore-fuzz}"
seed_args=()
[ -z "${STEVEDORE_FUZZ_SEED:-}" ] || seed_args=(--seed "$STEVEDORE_FUZZ_SEED")

need curl "checks that the server answers"
curl -fsS -o /dev/null --max-time 5 "$url/healthz" || die "no stevedore answers at $url/healthz (start one: npm start; or set STEVEDORE_URL)"

export STEVEDORE_FUZZ_HOOKS="$PROJECT_DIR/test/fuzz/hooks.py"
export PYTHONDONTWRITEBYTECODE=1 # no __pycache__ beside hooks.py in the checkout
export STEVEDORE_FUZZ_CALLBACK_URL="${STEVEDORE_FUZZ_CALLBACK_URL:-http://127.0.0.1:9/stevedore-fuzz}"
mkdir -p "$report_dir"
log "schemathesis $SCHEMATHESIS_VERSION against $url ($schema), ${STEVEDORE_FUZZ_MAX_EXAMPLES:-200} examples per operation; reports in $report_dir"
# From the report directory: schemathesis keeps its replay cache (.schemathesis/) in the
# working directory, which is then not the checkout.
cd "$report_dir"
exec "$ST" --config-file "$PROJECT_DIR/test/fuzz/schemathesis.toml" run "$schema" \
  --url "$url" \
  -H "Authorization: Bearer $token" \
  --max-examples "${STEVEDORE_FUZZ_MAX_EXAMPLES:-200}" \
  "${seed_args[@]}" \
  --report json,har --report-dir "$report_dir" \
  "$@"

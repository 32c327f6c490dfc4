#!/usr/bin/env bash
# `npm test`: install what is missing, start the services the tests need (the Docker
# engine for testcontainers, with locally built images), then run every test.
. "$(dirname "$0")/lib.sh"
t0=$(date +%s)
"$SCRIPTS_DIR/setup.sh"
use_node
"$SCRIPTS_DIR/start-dockerd.sh"
"$SCRIPTS_DIR/test-images.sh"
# The generator of the test vulnerability DB (test/trivy-db), cached by its source hash.
need go "builds the test vulnerability DB generator"
src_hash=$(cat "$PROJECT_DIR"/test/trivy-db/go.mod "$PROJECT_DIR"/test/trivy-db/go.sum "$PROJECT_DIR"/test/trivy-db/*.go | sha256sum | cut -c1-16)
export STEVEDORE_TRIVY_TEST_DB="$STEVEDORE_CACHE_DIR/tools/trivy-test-db-$src_hash/trivy-test-db"
if [ ! -x "$STEVEDORE_TRIVY_TEST_DB" ]; then
  log "building the test vulnerability DB generator"
  (cd "$PROJECT_DIR/test/trivy-db" && CGO_ENABLED=0 go build -trimpath -o "$STEVEDORE_TRIVY_TEST_DB.tmp" .) >&2 || die "go build of test/trivy-db failed"
  mv "$STEVEDORE_TRIVY_TEST_DB.tmp" "$STEVEDORE_TRIVY_TEST_DB"
fi
log "setup for tests took $(( $(date +%s) - t0 )) s"
export STEVEDORE_CACHE_DIR
# Ryuk (testcontainers' reaper) is an image from Docker Hub, which cannot be pulled
# here; the tests stop their own containers instead.
export TESTCONTAINERS_RYUK_DISABLED=true
cd "$PROJECT_DIR"
# One run of node's test runner over unit and integration files, so its closing lines
# count everything. Files run one at a time: integration files start daemons.
exec node --test --test-concurrency=1 --test-timeout=600000 \
  'dist/test/unit/**/*.test.js' 'dist/test/integration/**/*.test.js'

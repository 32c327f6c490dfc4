#!/usr/bin/env bash
# Builds the generator of the test vulnerability DB (test/trivy-db) when missing and
# prints its path. Cached by its source hash under $STEVEDORE_CACHE_DIR/tools/. Used by
# scripts/test.sh (STEVEDORE_TRIVY_TEST_DB) and scripts/compose-images.sh (the DB of the
# local Trivy server image).
. "$(dirname "$0")/lib.sh"
need go "builds the test vulnerability DB generator"
src_hash=$(cat "$PROJECT_DIR"/test/trivy-db/go.mod "$PROJECT_DIR"/test/trivy-db/go.sum "$PROJECT_DIR"/test/trivy-db/*.go | sha256sum | cut -c1-16)
bin="$STEVEDORE_CACHE_DIR/tools/trivy-test-db-$src_hash/trivy-test-db"
if [ ! -x "$bin" ]; then
  log "building the test vulnerability DB generator"
  mkdir -p "$(dirname "$bin")"
  (cd "$PROJECT_DIR/test/trivy-db" && CGO_ENABLED=0 go build -trimpath -o "$bin.tmp" .) >&2 || die "go build of test/trivy-db failed"
  mv "$bin.tmp" "$bin"
fi
echo "$bin"

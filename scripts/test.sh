#!/usr/bin/env bash
# `npm test`: install what is missing, start the services the tests need (the Docker
# engine for testcontainers, with locally built images), then run every test.
. "$(dirname "$0")/lib.sh"
t0=$(date +%s)
# --test: also the Docker engine, chromium, python3-venv and the compose/buildx plugins,
# which `npm start` (serve) never uses.
"$SCRIPTS_DIR/setup.sh" --test
use_node
# Style gates, right after setup.sh compiled TypeScript and before the slow setup and
# tests below: a formatting or lint violation fails the run within seconds, and the
# message names the command that fixes it. Both run, so one run reports both.
cd "$PROJECT_DIR"
style_ok=true
log "npm run format:check"
npm run -s format:check >&2 || { style_ok=false; log "formatting differs from Prettier's (files above): run \`npm run format\` and commit the result"; }
log "npm run lint"
npm run -s lint >&2 || { style_ok=false; log "ESLint found errors (above): \`npx eslint --fix .\` fixes some of them, the rest by hand; \`npm run lint\` to check again"; }
$style_ok || die "style checks failed (see above)"
"$SCRIPTS_DIR/start-dockerd.sh"
"$SCRIPTS_DIR/test-images.sh"
# schemathesis for test/integration/fuzz.test.ts, in a venv under the cache.
"$SCRIPTS_DIR/install-fuzz.sh"
# The generator of the test vulnerability DB (test/trivy-db), cached by its source hash.
STEVEDORE_TRIVY_TEST_DB=$("$SCRIPTS_DIR/trivy-test-db.sh")
export STEVEDORE_TRIVY_TEST_DB
# test/integration/service-image.test.ts: stand-ins for the base images of the service's
# Dockerfile and its offline npm cache ($STEVEDORE_CACHE_DIR/service-base-images.json).
"$SCRIPTS_DIR/service-base-images.sh"
# test/integration/compose.test.ts: the images docker-compose.yml runs here (local
# stand-ins for Docker Hub's), the buildx builder that builds the service image, and
# $STEVEDORE_CACHE_DIR/compose.env naming them. Needs dist/ (setup.sh compiled it).
"$SCRIPTS_DIR/compose-images.sh"
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

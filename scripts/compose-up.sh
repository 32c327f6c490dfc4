#!/usr/bin/env bash
# One command on a machine with no public registry: the local stand-in images
# (scripts/compose-images.sh), then `docker compose up -d --build --wait` with them
# (scripts/compose.sh sets the environment). Arguments go to `docker compose up`, e.g.
# --scale worker=3. Elsewhere the plain `docker compose up -d --build --wait` does the
# same with the official images.
#
# STEVEDORE_TOKEN, STEVEDORE_SECRETS_KEY, TRIVY_TOKEN and STEVEDORE_REDIS_PASSWORD come
# from the environment, else from $STEVEDORE_STATE_DIR/compose/secrets.env, generated once
# (mode 0600) the way `stevedore serve` generates its admin token; buildkitd's mutual-TLS
# certificates from STEVEDORE_BUILDKIT_CERTS, else $STEVEDORE_STATE_DIR/compose/buildkit-certs
# (scripts/gen-buildkit-certs.sh). Manage the stack afterwards with scripts/compose.sh
# (ps, logs, down, ...).
. "$(dirname "$0")/lib.sh"
"$SCRIPTS_DIR/compose-images.sh"
log "docker compose up -d --build --wait $*"
"$SCRIPTS_DIR/compose.sh" up -d --build --wait "$@"
log "api on $("$SCRIPTS_DIR/compose.sh" port api 8080) (admin token: \$STEVEDORE_TOKEN or ${STEVEDORE_STATE_DIR:-/var/lib/stevedore}/compose/secrets.env)"

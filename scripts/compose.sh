#!/usr/bin/env bash
# `docker compose ARGS` on a machine with no public registry, in the environment
# scripts/compose-up.sh brings the stack up with: the stand-in images, builder and
# override files of $STEVEDORE_CACHE_DIR/compose.env (scripts/compose-images.sh), the
# tokens and the Redis password of $STEVEDORE_STATE_DIR/compose/secrets.env (each
# generated once when missing) for whatever the environment does not set, and buildkitd's
# mutual-TLS certificates in $STEVEDORE_STATE_DIR/compose/buildkit-certs
# (scripts/gen-buildkit-certs.sh) unless STEVEDORE_BUILDKIT_CERTS names others. E.g.
# scripts/compose.sh ps, ... logs -f worker, ... up -d --scale worker=3, ... down.
. "$(dirname "$0")/lib.sh"
[ -f "$STEVEDORE_CACHE_DIR/compose.env" ] || die "$STEVEDORE_CACHE_DIR/compose.env missing: run scripts/compose-images.sh (or scripts/compose-up.sh)"
set -a
# shellcheck disable=SC1091
. "$STEVEDORE_CACHE_DIR/compose.env"
set +a
state="${STEVEDORE_STATE_DIR:-/var/lib/stevedore}/compose"
secrets="$state/secrets.env"
if [ -z "${STEVEDORE_TOKEN:-}" ] || [ -z "${STEVEDORE_SECRETS_KEY:-}" ] || [ -z "${TRIVY_TOKEN:-}" ] || [ -z "${STEVEDORE_REDIS_PASSWORD:-}" ]; then
  mkdir -p "$state"
  (umask 077 && touch "$secrets")
  # Each one generated once, when the file lacks it (a file from before the Redis
  # password gets just that added).
  for entry in STEVEDORE_TOKEN:"openssl rand -hex 24" STEVEDORE_SECRETS_KEY:"openssl rand -base64 32" \
               TRIVY_TOKEN:"openssl rand -hex 24" STEVEDORE_REDIS_PASSWORD:"openssl rand -hex 24"; do
    name=${entry%%:*}
    grep -q "^$name=" "$secrets" && continue
    need openssl "generates the tokens, the secrets key and the Redis password"
    printf '%s=%s\n' "$name" "$(${entry#*:})" >> "$secrets"
    log "generated $name into $secrets"
  done
  # Values already in the environment win over the file.
  while IFS='=' read -r name value; do
    [ -n "${!name:-}" ] || export "$name=$value"
  done < "$secrets"
fi
if [ -z "${STEVEDORE_BUILDKIT_CERTS:-}" ]; then
  export STEVEDORE_BUILDKIT_CERTS="$state/buildkit-certs"
  "$SCRIPTS_DIR/gen-buildkit-certs.sh" "$STEVEDORE_BUILDKIT_CERTS" >/dev/null 2>&1 || "$SCRIPTS_DIR/gen-buildkit-certs.sh" "$STEVEDORE_BUILDKIT_CERTS"
fi
cd "$PROJECT_DIR"
exec docker compose "$@"

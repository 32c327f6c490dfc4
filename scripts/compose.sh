#!/usr/bin/env bash
# `docker compose ARGS` on a machine with no public registry, in the environment
# scripts/compose-up.sh brings the stack up with: the stand-in images, builder and
# override files of $STEVEDORE_CACHE_DIR/compose.env (scripts/compose-images.sh), and the
# tokens of $STEVEDORE_STATE_DIR/compose/secrets.env (generated once when missing) for
# whatever the environment does not set. E.g. scripts/compose.sh ps, ... logs -f worker,
# ... up -d --scale worker=3, ... down.
. "$(dirname "$0")/lib.sh"
[ -f "$STEVEDORE_CACHE_DIR/compose.env" ] || die "$STEVEDORE_CACHE_DIR/compose.env missing: run scripts/compose-images.sh (or scripts/compose-up.sh)"
set -a
# shellcheck disable=SC1091
. "$STEVEDORE_CACHE_DIR/compose.env"
set +a
secrets="${STEVEDORE_STATE_DIR:-/var/lib/stevedore}/compose/secrets.env"
if [ -z "${STEVEDORE_TOKEN:-}" ] || [ -z "${STEVEDORE_SECRETS_KEY:-}" ] || [ -z "${TRIVY_TOKEN:-}" ]; then
  if [ ! -f "$secrets" ]; then
    need openssl "generates the tokens and the secrets key"
    mkdir -p "$(dirname "$secrets")"
    (umask 077 && printf 'STEVEDORE_TOKEN=%s\nSTEVEDORE_SECRETS_KEY=%s\nTRIVY_TOKEN=%s\n' \
      "$(openssl rand -hex 24)" "$(openssl rand -base64 32)" "$(openssl rand -hex 24)" > "$secrets")
    log "generated the admin token, secrets key and Trivy token into $secrets"
  fi
  # Values already in the environment win over the file.
  while IFS='=' read -r name value; do
    [ -n "${!name:-}" ] || export "$name=$value"
  done < "$secrets"
fi
cd "$PROJECT_DIR"
exec docker compose "$@"

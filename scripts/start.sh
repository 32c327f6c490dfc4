#!/usr/bin/env bash
# `npm start`: install what is missing, then run the all-in-one `stevedore serve`.
. "$(dirname "$0")/lib.sh"
"$SCRIPTS_DIR/setup.sh"
use_node
export STEVEDORE_CACHE_DIR
state="${STEVEDORE_STATE_DIR:-/var/lib/stevedore}"
log "starting stevedore serve (state dir $state); the admin token is in $state/admin-token unless STEVEDORE_TOKEN is set"
exec node "$PROJECT_DIR/bin/stevedore.js" serve

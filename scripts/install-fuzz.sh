#!/usr/bin/env bash
# Installs the API fuzzer schemathesis (from PyPI) at the pinned version into a venv
# cached outside the checkout: $STEVEDORE_CACHE_DIR/tools/schemathesis-<version>/.
# Its dependencies are pinned by scripts/fuzz-constraints.txt. Idempotent: a stamp file,
# written last, marks a complete venv; without it (or when the constraints changed) the
# venv is rebuilt. A venv cannot be moved once built (its scripts name their own path),
# so it is built in place rather than in a temporary directory.
. "$(dirname "$0")/lib.sh"
FUZZ_HOME="$STEVEDORE_CACHE_DIR/tools/schemathesis-$SCHEMATHESIS_VERSION"
constraints="$SCRIPTS_DIR/fuzz-constraints.txt"
stamp="$FUZZ_HOME/.stevedore-constraints-hash"
want=$(sha256sum "$constraints" | cut -d' ' -f1)
if [ -x "$FUZZ_HOME/bin/st" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  exit 0
fi
# Debian's python3 (with python3-venv, from install-system.sh) rather than whatever
# python3 comes first on PATH, so the venv does not depend on a pyenv or conda.
PYTHON=/usr/bin/python3
[ -x "$PYTHON" ] || PYTHON=$(command -v python3) || die "missing prerequisite: python3 (runs schemathesis)"
"$PYTHON" -c 'import ensurepip, venv' 2>/dev/null || die "$PYTHON cannot create a venv: install Debian's python3-venv (scripts/install-system.sh)"
log "installing schemathesis $SCHEMATHESIS_VERSION into $FUZZ_HOME"
rm -rf "$FUZZ_HOME"
"$PYTHON" -m venv "$FUZZ_HOME" >&2 || die "$PYTHON -m venv $FUZZ_HOME failed"
"$FUZZ_HOME/bin/pip" install --quiet --disable-pip-version-check --no-input \
  -c "$constraints" "schemathesis==$SCHEMATHESIS_VERSION" >&2 \
  || die "pip could not install schemathesis==$SCHEMATHESIS_VERSION"
"$FUZZ_HOME/bin/st" --version | grep -q "version $SCHEMATHESIS_VERSION\$" \
  || die "schemathesis in $FUZZ_HOME does not report $SCHEMATHESIS_VERSION"
echo "$want" > "$stamp"
log "schemathesis $SCHEMATHESIS_VERSION ready: $FUZZ_HOME/bin/st"

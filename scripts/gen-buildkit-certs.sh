#!/usr/bin/env bash
# Mutual-TLS certificates for a buildkitd that listens on TCP (docker-compose.yml,
# deploy/k8s): a CA, the daemon's certificate and the workers' client certificate.
#
#   scripts/gen-buildkit-certs.sh DIR [--san DNS-or-IP ...] [--client-uid UID] [--force]
#
# writes
#   DIR/ca.pem, DIR/ca-key.pem   the CA (keep ca-key.pem offline: it mints client certificates)
#   DIR/daemon/{ca.pem,cert.pem,key.pem}   buildkitd: --tlscacert ca.pem --tlscert cert.pem
#                                          --tlskey key.pem (client certificates required)
#   DIR/client/{ca.pem,cert.pem,key.pem}   the workers: STEVEDORE_BUILDKIT_TLS_DIR (buildctl --tlsdir)
#
# The daemon certificate names buildkitd, localhost, 127.0.0.1 and the Kubernetes names of
# deploy/k8s (buildkitd.stevedore.svc, *.buildkitd-headless, ...), plus each --san. It also
# allows client authentication, so buildkitd's own health probe can use it (buildctl
# --tlsdir DIR/daemon against 127.0.0.1). Run as root, the client key is handed to
# --client-uid (default 10001, the stevedore images' user) so the worker container can read
# it. Existing certificates valid for 30 more days are kept unless --force. EC P-256 keys.
#
# Kubernetes: kubectl -n stevedore create secret generic buildkitd-tls --from-file=DIR/daemon
#             kubectl -n stevedore create secret generic buildkit-client-tls --from-file=DIR/client
. "$(dirname "$0")/lib.sh"
need openssl "makes the certificates"

dir= force=0 client_uid=10001 sans=()
while [ $# -gt 0 ]; do
  case "$1" in
    --san) sans+=("$2"); shift 2 ;;
    --client-uid) client_uid=$2; shift 2 ;;
    --force) force=1; shift ;;
    -h|--help) sed -n '2,/^\. /p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) [ -z "$dir" ] || die "one directory only"; dir=$1; shift ;;
  esac
done
[ -n "$dir" ] || die "usage: $0 DIR [--san NAME ...] [--client-uid UID] [--force]"

valid() { [ -f "$1" ] && openssl x509 -in "$1" -noout -checkend $((30 * 86400)) >/dev/null 2>&1; }
if [ "$force" = 0 ] && valid "$dir/ca.pem" && valid "$dir/daemon/cert.pem" && valid "$dir/client/cert.pem" \
  && [ -f "$dir/daemon/key.pem" ] && [ -f "$dir/client/key.pem" ]; then
  log "buildkit certificates in $dir are current"
  exit 0
fi

umask 077
mkdir -p "$dir/daemon" "$dir/client"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
serial() { echo "0x$(openssl rand -hex 16)"; }

key "$dir/ca-key.pem"
openssl req -x509 -new -key "$dir/ca-key.pem" -sha256 -days 3650 -subj "/CN=stevedore buildkit CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -set_serial "$(serial)" -out "$dir/ca.pem"

# leaf NAME CN EKU SAN-LIST: a key and a certificate signed by the CA into $dir/NAME.
leaf() {
  local name=$1 cn=$2 eku=$3 san=$4
  key "$dir/$name/key.pem"
  openssl req -new -key "$dir/$name/key.pem" -subj "/CN=$cn" -out "$work/$name.csr"
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature"
    echo "extendedKeyUsage=$eku"
    [ -z "$san" ] || echo "subjectAltName=$san"
  } > "$work/$name.ext"
  openssl x509 -req -in "$work/$name.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca-key.pem" -set_serial "$(serial)" \
    -sha256 -days 825 -extfile "$work/$name.ext" -out "$dir/$name/cert.pem" 2>/dev/null
  cp "$dir/ca.pem" "$dir/$name/ca.pem"
}

names=(DNS:buildkitd DNS:localhost IP:127.0.0.1 DNS:buildkitd.stevedore.svc DNS:buildkitd.stevedore.svc.cluster.local
  DNS:buildkitd-headless DNS:*.buildkitd-headless DNS:*.buildkitd-headless.stevedore.svc DNS:*.buildkitd-headless.stevedore.svc.cluster.local)
for san in "${sans[@]}"; do
  if [[ "$san" =~ ^[0-9.]+$|: ]]; then names+=("IP:$san"); else names+=("DNS:$san"); fi
done
leaf daemon buildkitd "serverAuth,clientAuth" "$(IFS=,; echo "${names[*]}")"
leaf client stevedore-worker "clientAuth" ""

chmod 0755 "$dir" "$dir/daemon" "$dir/client"
chmod 0644 "$dir/ca.pem" "$dir/daemon/ca.pem" "$dir/daemon/cert.pem" "$dir/client/ca.pem" "$dir/client/cert.pem"
chmod 0600 "$dir/ca-key.pem" "$dir/daemon/key.pem" "$dir/client/key.pem"
if is_root; then
  chown "$client_uid:$client_uid" "$dir/client/key.pem"
else
  log "not root: $dir/client/key.pem stays yours (mode 0600); the worker container (uid $client_uid) reads it only after: chown $client_uid $dir/client/key.pem"
fi
openssl verify -CAfile "$dir/ca.pem" "$dir/daemon/cert.pem" "$dir/client/cert.pem" >/dev/null || die "the new certificates do not verify against the CA"
log "buildkit certificates written to $dir (CA, daemon/, client/)"

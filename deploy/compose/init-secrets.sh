#!/usr/bin/env sh
# Makes the secrets deploy/compose.yaml mounts, under deploy/compose/secrets/ (git-ignored):
# keyring, Redis password and URL, the IdP's client for the broker, the config with the
# demo service's token digest. Prints the demo service token once. Idempotent: existing
# files are kept (delete one to make it anew; a new keyring makes stored grants unreadable).
#
# Uses the `consent-broker` binary on PATH, or the image (BROKER_IMAGE, default
# consent-broker:dev) through `docker run`.
set -eu
cd "$(dirname "$0")"
umask 077
mkdir -p secrets
chmod 700 secrets

broker() {
  if command -v consent-broker >/dev/null 2>&1; then
    consent-broker "$@"
  else
    docker run --rm "${BROKER_IMAGE:-consent-broker:dev}" "$@"
  fi
}
random() { head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n'; }

if [ ! -f secrets/keyring.toml ]; then
  line=$(broker keys generate | grep -v '^#')
  id=${line%% *}
  printf 'active = "%s"\n\n[keys]\n%s\n' "$id" "$line" > secrets/keyring.toml
  echo "made secrets/keyring.toml (active key $id): back it up; without it grants are lost"
fi
[ -f secrets/redis-password ] || random > secrets/redis-password
printf 'redis://:%s@redis:6379/0' "$(cat secrets/redis-password)" > secrets/redis-url
[ -f secrets/oidc-client-secret ] || random > secrets/oidc-client-secret
cat > secrets/idp-options.json <<JSON
{"host": "0.0.0.0", "port": 4000, "issuer": "http://idp.localhost:4000",
 "admins": ["admin"],
 "clients": [{"client_id": "consent-broker", "client_secret": "$(cat secrets/oidc-client-secret)",
              "redirect_uris": ["http://localhost:8080/auth/callback"],
              "grant_types": ["authorization_code"], "response_types": ["code"],
              "token_endpoint_auth_method": "client_secret_basic"}]}
JSON
if [ ! -f secrets/broker.toml ]; then
  out=$(broker service-token generate)
  token=$(printf '%s\n' "$out" | sed -n 's/^token .*: *//p')
  digest=$(printf '%s\n' "$out" | sed -n 's/^token_sha256 .*: *//p')
  sed "s/^token_sha256 = \"0\{64\}\"/token_sha256 = \"$digest\"/" broker.toml > secrets/broker.toml
  echo "demo-mcp service token (shown once; give it to your MCP service): $token"
fi
# The broker runs as uid 65532 and reads these through bind mounts; the directory (0700)
# keeps them from other users of this machine.
chmod 644 secrets/*
echo "secrets ready in $(pwd)/secrets"

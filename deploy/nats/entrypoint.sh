#!/bin/sh
# Runs one node of Tocsin's cluster in a container (docker-compose.yml):
# node.conf and accounts.bootstrap.conf are in /etc/nats, the accounts file
# the coordinator writes is in /etc/nats/accounts (a volume it shares with
# the coordinator and the other nodes). The node is reloaded whenever that
# file changes, so a newly registered provider can connect.
set -eu
dir=/etc/nats
f=$dir/accounts/accounts.conf

# Until the coordinator has written the real file, start from the bootstrap
# (the coordinator's login only, its password taken from the environment).
# A hard link either creates the file whole or fails because it exists, so
# three nodes starting together never see half a file nor overwrite the
# coordinator's.
if [ ! -f "$f" ]; then
  tmp=$f.bootstrap.$$
  cp "$dir/accounts.bootstrap.conf" "$tmp"
  # No secret in it (the password is an environment reference), but the
  # file it stands in for holds hashes: 0600 like the coordinator's.
  chmod 600 "$tmp"
  ln "$tmp" "$f" 2>/dev/null || true
  rm -f "$tmp"
fi

nats-server -c "$dir/node.conf" &
pid=$!
# docker stop: let the server shut down cleanly rather than be killed.
trap 'kill -TERM "$pid" 2>/dev/null' TERM INT

last=$(md5sum "$f")
while kill -0 "$pid" 2>/dev/null; do
  sleep 2
  now=$(md5sum "$f")
  if [ "$now" != "$last" ]; then
    last=$now
    # Twice: a reload that adds an account links its imports only on the
    # next one (see internal/natsbus/embedded.go).
    kill -HUP "$pid"
    sleep 1
    kill -HUP "$pid"
  fi
done
wait "$pid"

#!/bin/sh
# Runs one node of Tocsin's cluster in a container (docker-compose.yml):
# node.conf is in /etc/nats, the trust file (operator, system account,
# preloaded accounts) in /etc/nats/accounts, a volume the "bootstrap"
# service writes before any node starts. Provider accounts are pushed to
# the running nodes by the coordinator: nothing here watches or reloads.
set -eu
f=/etc/nats/accounts/accounts.conf
until [ -s "$f" ]; do
  echo "waiting for $f (tocsin nats bootstrap)"
  sleep 1
done
exec nats-server -c /etc/nats/node.conf

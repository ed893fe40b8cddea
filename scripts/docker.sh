#!/usr/bin/env bash
# Makes a Docker engine available for the Docker sandbox backend: installs Debian's docker.io and starts
# dockerd when run as root and none answers. No registry is used: the image is built locally by the tests
# (or `evolve sandbox build`).
set -uo pipefail
docker_ok() { command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; }
docker_ok && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "docker: no engine answers and this is not root; the Docker backend's tests will be skipped" >&2
  exit 0
fi
if ! command -v dockerd >/dev/null 2>&1; then
  echo "docker: installing Debian's docker.io" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
fi
if ! pgrep -x dockerd >/dev/null 2>&1; then
  echo "docker: starting dockerd (log: /tmp/evolve-dockerd.log)" >&2
  nohup dockerd >/tmp/evolve-dockerd.log 2>&1 &
fi
for _ in $(seq 1 60); do docker_ok && exit 0; sleep 1; done
echo "docker: dockerd did not answer within 60 s (see /tmp/evolve-dockerd.log)" >&2
exit 1

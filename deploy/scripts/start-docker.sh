#!/usr/bin/env bash
# Install Docker and Compose v1 from Debian when missing, and start dockerd when it is not running.
set -euo pipefail
if ! command -v docker >/dev/null || ! command -v docker-compose >/dev/null || ! command -v debootstrap >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q docker.io docker-compose debootstrap \
    || (apt-get update -q && apt-get install -y -q docker.io docker-compose debootstrap)
fi
if ! docker info >/dev/null 2>&1; then
  nohup dockerd >/tmp/dockerd.log 2>&1 &
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
fi
docker info >/dev/null

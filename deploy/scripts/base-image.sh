#!/usr/bin/env bash
# Print the base image for the service build: $BASE_IMAGE when set; else the official slim Python
# image when it is present or can be pulled; else a Debian bookworm image built here with
# debootstrap (no registry needed), imported once as genai-factory-base:bookworm.
set -euo pipefail
official=python:3.11-slim-bookworm
local_base=genai-factory-base:bookworm
if [ -n "${BASE_IMAGE:-}" ]; then echo "$BASE_IMAGE"; exit 0; fi
if docker image inspect "$official" >/dev/null 2>&1; then echo "$official"; exit 0; fi
if docker image inspect "$local_base" >/dev/null 2>&1; then echo "$local_base"; exit 0; fi
if timeout 30 docker pull -q "$official" >/dev/null 2>&1; then echo "$official"; exit 0; fi
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
root=$(mktemp -d /tmp/genai-base.XXXXXX)
trap 'rm -rf "$root"' EXIT
echo ">>> no registry answered: building $local_base with debootstrap from $mirror" >&2
flock /tmp/genai-cpu.lock debootstrap --variant=minbase bookworm "$root" "$mirror" >&2
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
tar -C "$root" -c . | docker import -c 'CMD ["/bin/bash"]' - "$local_base" >/dev/null
echo "$local_base"

#!/usr/bin/env bash
# OCI tools for tests/image_e2e.rs: `skopeo inspect oci-archive:` reads the image
# `agentd build --image` writes, `umoci unpack` turns it into a root filesystem the
# test runs the binary in, and podman loads, inspects and runs it (`podman load`
# reads the same OCI archive `docker load` does). podman, not docker: it needs no
# daemon (dockerd needs containerd, iptables and cgroup delegation, which a CI
# container without systemd does not give it). podman runs the image with runc:
# crun, podman's default, refuses hosts mixing cgroup v1 and v2 (as CI containers
# do). Debian bookworm's packages, pinned; does nothing when all are installed at
# these versions.
set -euo pipefail
SKOPEO_VERSION="1.9.3+ds1-1+b10"
UMOCI_VERSION="0.4.7+ds-3+b7"
PODMAN_VERSION="4.3.1+ds1-8+deb12u1+b3"
RUNC_VERSION="1.1.5+ds1-1+deb12u1"

installed() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || true; }

if [ "$(installed skopeo)" = "$SKOPEO_VERSION" ] && [ "$(installed umoci)" = "$UMOCI_VERSION" ] \
    && [ "$(installed podman)" = "$PODMAN_VERSION" ] && [ "$(installed runc)" = "$RUNC_VERSION" ]; then
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
    "skopeo=$SKOPEO_VERSION" "umoci=$UMOCI_VERSION" \
    "podman=$PODMAN_VERSION" "runc=$RUNC_VERSION"

#!/usr/bin/env bash
# skopeo and umoci for tests/image_e2e.rs: `skopeo inspect oci-archive:` reads the
# image `agentd build --image` writes, `umoci unpack` turns it into a root filesystem
# the test runs the binary in. Debian bookworm's packages, pinned; does nothing when
# both are installed at these versions.
set -euo pipefail
SKOPEO_VERSION="1.9.3+ds1-1+b10"
UMOCI_VERSION="0.4.7+ds-3+b7"

installed() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || true; }

if [ "$(installed skopeo)" = "$SKOPEO_VERSION" ] && [ "$(installed umoci)" = "$UMOCI_VERSION" ]; then
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
    "skopeo=$SKOPEO_VERSION" "umoci=$UMOCI_VERSION"

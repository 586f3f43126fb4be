#!/usr/bin/env bash
# Builds the Trail image without a registry: static binaries are built on
# the host (CGO_ENABLED=0), checked to be static, and copied into an image
# FROM scratch. Usage: deploy/build-image.sh [IMAGE] (default $TRAIL_IMAGE,
# else trail:dev). `make image` runs it.
set -euo pipefail
cd "$(dirname "$0")/.."

image=${1:-${TRAIL_IMAGE:-trail:dev}}
go=${GO:-go}
bin=deploy/bin

rm -rf "$bin"
mkdir -p "$bin/rootfs/data" "$bin/rootfs/secrets"
for cmd in traild trailctl; do
	CGO_ENABLED=0 "$go" build -trimpath -o "$bin/$cmd" "./cmd/$cmd"
done
CGO_ENABLED=0 "$go" build -trimpath -o "$bin/gencerts" ./deploy/gencerts

# An image FROM scratch has no dynamic loader or libc: every binary must be
# static. The toolchain records whether cgo was on; `file` double-checks
# the ELF when it is installed.
for b in traild trailctl gencerts; do
	if ! "$go" version -m "$bin/$b" | grep -q 'CGO_ENABLED=0'; then
		echo "build-image: $bin/$b was built with cgo" >&2
		exit 1
	fi
	if command -v file >/dev/null && ! file "$bin/$b" | grep -q 'statically linked'; then
		echo "build-image: $bin/$b is not statically linked: $(file "$bin/$b")" >&2
		exit 1
	fi
done

docker build -q -t "$image" deploy >/dev/null
echo "built $image ($(docker image inspect -f '{{.Size}}' "$image") bytes): $("$bin/traild" version)"

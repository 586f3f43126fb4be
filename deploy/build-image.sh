#!/usr/bin/env bash
# Builds the Trail images without a registry: static binaries are built on
# the host (CGO_ENABLED=0), checked to be static, and copied into images
# FROM scratch: IMAGE (traild, trailctl, gencerts) and NATS_IMAGE
# (nats-server, built from the Go module go.mod pins, for the Compose
# cluster's bus ingest). Usage: deploy/build-image.sh [IMAGE [NATS_IMAGE]]
# (defaults $TRAIL_IMAGE, else trail:dev, and $TRAIL_NATS_IMAGE, else
# trail-nats:dev). `make image` runs it.
set -euo pipefail
cd "$(dirname "$0")/.."

image=${1:-${TRAIL_IMAGE:-trail:dev}}
nats_image=${2:-${TRAIL_NATS_IMAGE:-trail-nats:dev}}
go=${GO:-go}
bin=deploy/bin

rm -rf "$bin"
mkdir -p "$bin/rootfs/data" "$bin/rootfs/secrets"
for cmd in traild trailctl; do
	CGO_ENABLED=0 "$go" build -trimpath -o "$bin/$cmd" "./cmd/$cmd"
done
CGO_ENABLED=0 "$go" build -trimpath -o "$bin/gencerts" ./deploy/gencerts
# The NATS server is a Go module like any other: the version go.mod
# requires, from the module proxy, with its checksum in go.sum.
CGO_ENABLED=0 "$go" build -trimpath -o "$bin/nats-server" github.com/nats-io/nats-server/v2

# An image FROM scratch has no dynamic loader or libc: every binary must be
# static. The toolchain records whether cgo was on; `file` double-checks
# the ELF when it is installed.
for b in traild trailctl gencerts nats-server; do
	if ! "$go" version -m "$bin/$b" | grep -q 'CGO_ENABLED=0'; then
		echo "build-image: $bin/$b was built with cgo" >&2
		exit 1
	fi
	if command -v file >/dev/null && ! file "$bin/$b" | grep -q 'statically linked'; then
		echo "build-image: $bin/$b is not statically linked: $(file "$bin/$b")" >&2
		exit 1
	fi
done

docker build -q --target trail -t "$image" deploy >/dev/null
echo "built $image ($(docker image inspect -f '{{.Size}}' "$image") bytes): $("$bin/traild" version)"
docker build -q --target nats -t "$nats_image" deploy >/dev/null
echo "built $nats_image ($(docker image inspect -f '{{.Size}}' "$nats_image") bytes): $("$bin/nats-server" --version)"

# The commands a newcomer needs: `make run` and `make test`.
GO ?= go
PROTOC ?= protoc
GOBIN ?= $(shell $(GO) env GOPATH)/bin

.PHONY: run test build proto proto-tools proto-check

## run: start a single-node server on loopback with the default data directory ./trail-data
run:
	$(GO) run ./cmd/traild

## test: the whole test suite, as CI runs it
test:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) test -race -timeout 60m ./...

build:
	CGO_ENABLED=0 $(GO) build -o bin/ ./cmd/...
image: ; GO=$(GO) deploy/build-image.sh

PROTO_PLUGINS = \
	google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12 \
	google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2 \
	github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-grpc-gateway@v2.33.0 \
	github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-openapiv2@v2.33.0

## proto-tools: install protoc (Debian) and the pinned code generators
proto-tools:
	command -v $(PROTOC) >/dev/null || (apt-get update -qq && apt-get install -y -qq protobuf-compiler)
	for p in $(PROTO_PLUGINS); do GOBIN=$(GOBIN) $(GO) install $$p || exit 1; done

## proto: regenerate the committed Go code and OpenAPI document from proto/
proto:
	$(PROTOC) -I proto -I /usr/include \
		--plugin=protoc-gen-go=$(GOBIN)/protoc-gen-go --go_out=proto --go_opt=paths=source_relative \
		--plugin=protoc-gen-go-grpc=$(GOBIN)/protoc-gen-go-grpc --go-grpc_out=proto --go-grpc_opt=paths=source_relative \
		--plugin=protoc-gen-grpc-gateway=$(GOBIN)/protoc-gen-grpc-gateway --grpc-gateway_out=proto \
		--grpc-gateway_opt=paths=source_relative,grpc_api_configuration=proto/trail/v1/gateway.yaml \
		--plugin=protoc-gen-openapiv2=$(GOBIN)/protoc-gen-openapiv2 --openapiv2_out=proto \
		--openapiv2_opt=grpc_api_configuration=proto/trail/v1/gateway.yaml,openapi_configuration=proto/trail/v1/openapi.yaml,json_names_for_fields=false,allow_merge=true,merge_file_name=trail \
		proto/trail/v1/event.proto proto/trail/v1/trail.proto proto/trail/v1/compliance.proto $(wildcard proto/trail/v1/raft.proto)

## proto-check: fail if the committed generated code is stale
proto-check: proto
	git diff --exit-code -- proto/

// Package proto holds the Trail API definitions (trail/v1) and the OpenAPI
// document generated from them, embedded here so that servers can publish
// the exact document that `make proto` produced, with no copy to keep in
// step.
package proto

import _ "embed"

// OpenAPI is the OpenAPI v2 document of the REST mapping (trail.swagger.json).
//
//go:embed trail.swagger.json
var OpenAPI []byte

// Package api holds the OpenAPI 3.1 description of deskrelay's HTTP API,
// served at GET /v1/openapi.json and checked against the real handlers by
// the tests of package main (openapi_test.go).
package api

import _ "embed"

// OpenAPI is the OpenAPI 3.1 document (JSON) describing every route.
//
//go:embed openapi.json
var OpenAPI []byte

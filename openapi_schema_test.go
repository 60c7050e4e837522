package main

import (
	"fmt"
	"slices"
	"sort"
	"testing"
	"time"
)

// The schema check of real answers against api/openapi.json: the subset of
// JSON Schema the document uses for them ($ref, type, required, properties,
// additionalProperties: false, items, enum, const, minimum, date-time).

// checkStatusSchema GETs /v1/status (url) as admin and fails for every way
// the answer departs from components.schemas.DaemonStatus; account is the
// account whose details the answer must carry ("": none).
func checkStatusSchema(t *testing.T, url, password, account string) {
	t.Helper()
	doc := adminGet(t, url, password)
	spec, err := loadOpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range validateSchema(spec.Raw, map[string]any{"$ref": "#/components/schemas/DaemonStatus"}, doc, "status") {
		t.Errorf("GET %s: %s", url, p)
	}
	if got, _ := doc["account"].(string); got != account {
		t.Errorf("GET %s: account = %q, want %q", url, got, account)
	}
	if _, has := doc["outbound"]; has != (account != "") {
		t.Errorf("GET %s: outbound present = %v, want %v (details of %q)", url, has, account != "", account)
	}
	if accts, _ := doc["accounts"].([]any); len(accts) == 0 {
		t.Errorf("GET %s: no accounts in the summary: %v", url, doc)
	}
}

// validateSchema returns every way v departs from schema (at path).
func validateSchema(root map[string]any, schema map[string]any, v any, path string) []string {
	if ref, ok := schema["$ref"].(string); ok {
		target, _ := resolveRef(root, ref).(map[string]any)
		if target == nil {
			return []string{path + ": $ref " + ref + " does not resolve"}
		}
		return validateSchema(root, target, v, path)
	}
	if p := checkType(schema, v, path); p != "" {
		return []string{p}
	}
	var out []string
	if enum, ok := schema["enum"].([]any); ok && !slices.Contains(enum, v) {
		out = append(out, fmt.Sprintf("%s: %v is not one of %v", path, v, enum))
	}
	if c, ok := schema["const"]; ok && c != v {
		out = append(out, fmt.Sprintf("%s: %v, want %v", path, v, c))
	}
	if lowest, ok := schema["minimum"].(float64); ok {
		if n, isNum := v.(float64); isNum && n < lowest {
			out = append(out, fmt.Sprintf("%s: %v is below the minimum %v", path, n, lowest))
		}
	}
	if schema["format"] == "date-time" {
		if s, ok := v.(string); ok {
			if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
				out = append(out, fmt.Sprintf("%s: %q is not a date-time", path, s))
			}
		}
	}
	switch val := v.(type) {
	case map[string]any:
		out = append(out, validateObject(root, schema, val, path)...)
	case []any:
		if items, ok := schema["items"].(map[string]any); ok {
			for i, item := range val {
				out = append(out, validateSchema(root, items, item, fmt.Sprintf("%s[%d]", path, i))...)
			}
		}
	}
	return out
}

// validateObject checks an object's required, declared and undeclared
// properties.
func validateObject(root, schema map[string]any, v map[string]any, path string) []string {
	var out []string
	props, _ := schema["properties"].(map[string]any)
	required, _ := schema["required"].([]any)
	for _, r := range required {
		if _, ok := v[r.(string)]; !ok {
			out = append(out, fmt.Sprintf("%s: required %s is missing", path, r))
		}
	}
	names := make([]string, 0, len(v))
	for k := range v {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		sub, declared := props[k].(map[string]any)
		if !declared {
			if schema["additionalProperties"] == false {
				out = append(out, fmt.Sprintf("%s: %s is not in the schema (additionalProperties: false)", path, k))
			}
			continue
		}
		out = append(out, validateSchema(root, sub, v[k], path+"."+k)...)
	}
	return out
}

// checkType checks schema's type (a name or a list of names), if any.
func checkType(schema map[string]any, v any, path string) string {
	var types []string
	switch t := schema["type"].(type) {
	case string:
		types = []string{t}
	case []any:
		for _, x := range t {
			types = append(types, x.(string))
		}
	default:
		return ""
	}
	got := jsonType(v)
	if slices.Contains(types, got) || (got == "integer" && slices.Contains(types, "number")) {
		return ""
	}
	return fmt.Sprintf("%s: a %s, want %v", path, got, types)
}

func jsonType(v any) string {
	switch n := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	case float64:
		if n == float64(int64(n)) {
			return "integer"
		}
		return "number"
	}
	return fmt.Sprintf("%T", v)
}

package accounts

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/deskrelay/deskrelay/internal/budget"
)

// fieldNames are an account's fields, in the order of the docs.
var fieldNames = []string{
	"name", "subdomain", "url",
	"email", "api_token_file", "oauth_token_file",
	"oauth_client_id", "oauth_client_secret_file", "oauth_refresh_token_file",
	"rate_limit", "update_rate_limit",
	"webhook_id", "webhook_secret_file", "target_id", "target_user", "target_password_file",
}

// maxSecretFile bounds a secret file: anything larger is not a secret (a
// path to the wrong file, or to a device).
const maxSecretFile = 64 << 10

// Defaults of the rate fields, as for the single-account settings.
var (
	defaultRate       = budget.Share(50)
	defaultUpdateRate = budget.Share(70)
)

// item is one account of the list while it is read.
type item struct {
	index, line int
	dir         string                // relative secret paths start here
	fields      map[string]*yaml.Node // field → value
	problems    []fieldProblem
}

type fieldProblem struct{ field, msg string }

func (it *item) add(field, format string, args ...any) {
	it.problems = append(it.problems, fieldProblem{field, fmt.Sprintf(format, args...)})
}

// has reports whether the account gives field (even if its value is bad).
func (it *item) has(field string) bool { return it.fields[field] != nil }

// collect reads a mapping's fields into it.fields, merges (<<: *anchor)
// included; a field of the mapping itself wins over a merged one.
func (it *item) collect(n *yaml.Node, depth int) {
	seen := map[string]int{}
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.ShortTag() == "!!merge" {
			merges = append(merges, v)
			continue
		}
		if line, dup := seen[k.Value]; dup {
			it.add(k.Value, "given twice (lines %d and %d)", line, k.Line)
			continue
		}
		seen[k.Value] = k.Line
		if it.has(k.Value) || !it.known(k.Value) {
			continue
		}
		it.fields[k.Value] = v
	}
	for _, m := range merges {
		m = resolve(m)
		var maps []*yaml.Node
		switch m.Kind {
		case yaml.MappingNode:
			maps = []*yaml.Node{m}
		case yaml.SequenceNode:
			maps = m.Content
		}
		for _, mm := range maps {
			if mm = resolve(mm); mm.Kind != yaml.MappingNode || depth > 8 {
				it.add("<<", "merge a mapping (*anchor) or a list of them")
				continue
			}
			it.collect(mm, depth+1)
		}
		if len(maps) == 0 {
			it.add("<<", "merge a mapping (*anchor) or a list of them")
		}
	}
}

// known reports whether field is an account's field, adding the problem
// when it is not.
func (it *item) known(field string) bool {
	switch {
	case slices.Contains(fieldNames, field):
		return true
	case slices.Contains(fieldNames, field+"_file"):
		it.add(field, "a secret is read from a file only: give the file's path as %s_file", field)
	default:
		it.add(field, "unknown field")
	}
	return false
}

// str is field's value, "" when the account does not give it.
func (it *item) str(field string) string {
	n := it.fields[field]
	if n == nil {
		return ""
	}
	n = resolve(n)
	switch {
	case n.Kind != yaml.ScalarNode:
		it.add(field, "must be a single value, not a list or a mapping")
		return ""
	case n.ShortTag() == "!!null" || n.Value == "":
		it.add(field, "has no value: give one, or leave the field out")
		return ""
	}
	return n.Value
}

// secret reads the file field names, trimmed of surrounding whitespace.
// Problems name the path, never the content.
func (it *item) secret(field string) string {
	path := it.str(field)
	if path == "" {
		return ""
	}
	if !filepath.IsAbs(path) {
		path = filepath.Join(it.dir, path)
	}
	f, err := os.Open(path)
	if err != nil {
		it.add(field, "%v", err)
		return ""
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	switch {
	case err != nil:
		it.add(field, "%v", err)
		return ""
	case len(b) > maxSecretFile:
		it.add(field, "%s is larger than %d KiB: not a secret", path, maxSecretFile>>10)
		return ""
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		it.add(field, "%s is empty", path)
	}
	return s
}

// rate reads a rate field ("400" a minute, or a share "50%").
func (it *item) rate(field string, def budget.Rate) budget.Rate {
	s := it.str(field)
	if s == "" {
		return def
	}
	r, err := budget.ParseRate(field, s)
	if err != nil {
		it.add(field, "%s", strings.TrimPrefix(err.Error(), field+": "))
		return def
	}
	return r
}

// targetID reads target_id, a positive number.
func (it *item) targetID() int64 {
	s := it.str("target_id")
	if s == "" {
		return 0
	}
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		it.add("target_id", "must be a positive number, got %q", s)
		return 0
	}
	return id
}

func dirOf(path string) string { return filepath.Dir(path) }

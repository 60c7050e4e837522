package accounts

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"go.yaml.in/yaml/v3"
)

// File is a loaded accounts file.
type File struct {
	// Path is the file as given to Load.
	Path string
	// Accounts are in the file's order; their names are unique.
	Accounts []Account
}

// Names returns the accounts' names in the file's order.
func (f *File) Names() []string {
	out := make([]string, len(f.Accounts))
	for i, a := range f.Accounts {
		out[i] = a.Name
	}
	return out
}

// Load reads the accounts file at path and every secret file it names, and
// checks them. A file with problems yields an *Error holding all of them,
// one line each.
func Load(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		msg := err.Error()
		if u := errors.Unwrap(err); u != nil {
			msg = u.Error() // the line names the path already
		}
		return nil, &Error{Path: path, Problems: []Problem{{Message: "cannot read the file: " + msg}}}
	}
	l := &loader{dir: dirOf(path), names: map[string]int{}}
	var out []Account
	for i, n := range l.list(data) {
		if a, ok := l.account(i+1, n); ok {
			out = append(out, a)
		}
	}
	if len(l.problems) > 0 {
		return nil, &Error{Path: path, Problems: l.problems}
	}
	return &File{Path: path, Accounts: out}, nil
}

// loader collects one file's accounts and problems.
type loader struct {
	dir      string         // relative secret paths start here
	names    map[string]int // account name → its line, for repeated names
	problems []Problem
}

func (l *loader) fileProblem(field, format string, args ...any) {
	l.problems = append(l.problems, Problem{Field: field, Message: fmt.Sprintf(format, args...)})
}

// list returns the items of the file's accounts: list.
func (l *loader) list(data []byte) []*yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			l.fileProblem("", "the file is empty: want accounts: and a list of accounts")
		} else {
			l.fileProblem("", "not valid YAML: %v", err)
		}
		return nil
	}
	var next yaml.Node
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		l.fileProblem("", "want one YAML document, found more (---)")
	}
	root := resolve(doc.Content[0])
	if root.Kind != yaml.MappingNode {
		l.fileProblem("", "want a mapping with accounts: and a list of accounts")
		return nil
	}
	var list *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		switch {
		case k.Value != "accounts":
			l.fileProblem(k.Value, "unknown field (line %d): the file holds accounts: only", k.Line)
		case list != nil:
			l.fileProblem("accounts", "given twice (lines %d and %d)", list.Line, k.Line)
		default:
			list = resolve(v)
		}
	}
	switch {
	case list == nil:
		l.fileProblem("accounts", "required: a list of accounts")
	case list.Kind == yaml.ScalarNode && list.ShortTag() == "!!null":
		l.fileProblem("accounts", "the list is empty: give at least one account")
	case list.Kind != yaml.SequenceNode:
		l.fileProblem("accounts", "must be a list of accounts (- name: …)")
	case len(list.Content) == 0:
		l.fileProblem("accounts", "the list is empty: give at least one account")
	default:
		return list.Content
	}
	return nil
}

// resolve follows an alias (*anchor) to the node it names.
func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

package logging

import (
	"bytes"
	"encoding/json"
	"errors"
)

// DuplicateKeys returns the top-level keys that appear more than once in
// one JSON log line (encoding/json would silently keep the last); tests
// use it to hold "a key appears once per line".
func DuplicateKeys(line []byte) ([]string, error) {
	dec := json.NewDecoder(bytes.NewReader(line))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, errors.New("not a JSON object")
	}
	seen := map[string]bool{}
	var dups []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return dups, err
		}
		key, _ := tok.(string)
		if seen[key] {
			dups = append(dups, key)
		}
		seen[key] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return dups, err
		}
	}
	return dups, nil
}

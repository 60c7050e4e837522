package zdoauth

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// jsonTransport re-encodes the form-encoded token request that
// golang.org/x/oauth2 builds (RFC 6749) as the JSON object Zendesk documents
// for POST /oauth/tokens ("parameters … must be formatted as JSON"). The
// oauth2 package still builds the grant and reads the answer.
type jsonTransport struct{ next http.RoundTripper }

func (t jsonTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method != http.MethodPost || r.Body == nil ||
		!strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		return t.next.RoundTrip(r)
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	_ = r.Body.Close()
	if err != nil {
		return nil, errors.New("read token request body")
	}
	vals, err := url.ParseQuery(string(raw))
	if err != nil {
		return nil, errors.New("token request body is not form-encoded")
	}
	obj := make(map[string]string, len(vals))
	for k, v := range vals {
		if len(v) > 0 {
			obj[k] = v[0]
		}
	}
	body, err := json.Marshal(obj)
	if err != nil {
		return nil, errors.New("encode token request")
	}
	r2 := r.Clone(r.Context())
	r2.Body = io.NopCloser(bytes.NewReader(body))
	r2.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	r2.ContentLength = int64(len(body))
	r2.Header.Set("Content-Type", "application/json")
	r2.Header.Set("Accept", "application/json")
	return t.next.RoundTrip(r2)
}

package zdoauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/oauth2"

	"github.com/deskrelay/deskrelay/internal/textx"
	"github.com/deskrelay/deskrelay/zendesk"
)

// op is the Op of every *zendesk.Error this package returns.
const op = "refresh OAuth token"

// Outcomes of a refresh, as in the metric's "outcome" label.
const (
	outcomeOK           = "ok"
	outcomeUnauthorized = "unauthorized"
	outcomeTemporary    = "temporary"
	outcomeRateLimited  = "rate_limited"
)

func outcome(ze *zendesk.Error) string {
	switch ze.Kind {
	case zendesk.KindUnauthorized:
		return outcomeUnauthorized
	case zendesk.KindRateLimited:
		return outcomeRateLimited
	default:
		return outcomeTemporary
	}
}

// rejectingCodes are RFC 6749 error codes that mean these credentials will
// never work again: only new ones help.
var rejectingCodes = map[string]bool{
	"invalid_grant":       true,
	"invalid_client":      true,
	"unauthorized_client": true,
	"invalid_request":     true,
}

// classify turns a failure of the token request into a *zendesk.Error whose
// message holds no secret: only the status, the RFC 6749 error code and a
// scrubbed description.
func (s *Source) classify(err error, secrets []string) *zendesk.Error {
	ze := &zendesk.Error{Op: op, Kind: zendesk.KindTemporary}
	var re *oauth2.RetrieveError
	switch {
	case errors.As(err, &re):
		status := 0
		if re.Response != nil {
			status = re.Response.StatusCode
			ze.RequestID = oneLine(re.Response.Header.Get("X-Request-Id"), 100)
		}
		code := oneLine(re.ErrorCode, 60)
		ze.Status, ze.Name = status, code
		msg := "token endpoint answered"
		if status != 0 {
			msg += fmt.Sprintf(" %d", status)
		}
		if code != "" {
			msg += " " + code
		}
		if d := oneLine(re.ErrorDescription, 200); d != "" {
			msg += ": " + d
		}
		ze.Message = scrub(msg, secrets)
		switch {
		case status == http.StatusTooManyRequests:
			ze.Kind = zendesk.KindRateLimited
			ze.RetryAfter = zendesk.DefaultRetryAfter
			if re.Response != nil {
				if d, ok := zendesk.ParseRetryAfter(re.Response.Header.Get("Retry-After"), s.cfg.Now()); ok {
					ze.RetryAfter = d
				}
			}
		case status == http.StatusBadRequest || status == http.StatusUnauthorized || status == http.StatusForbidden,
			rejectingCodes[code] && status < 500:
			ze.Kind = zendesk.KindUnauthorized
		}
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		ze.Message = "token request: " + err.Error()
		ze.Err = err
	default:
		var ue *url.Error
		if errors.As(err, &ue) && ue.Err != nil {
			err = ue.Err // its text holds the URL
		}
		ze.Message = scrub("token request failed: "+oneLine(err.Error(), 200), secrets)
		ze.Err = errors.New(ze.Message)
	}
	return ze
}

// unauthorized is the error for credentials already known to be rejected.
func unauthorized(lastError string) *zendesk.Error {
	msg := "the refresh token was rejected; configure a new OAuth refresh token"
	if lastError != "" {
		msg += " (" + lastError + ")"
	}
	return &zendesk.Error{Op: op, Kind: zendesk.KindUnauthorized, Message: msg}
}

func temporary(format string, args ...any) *zendesk.Error {
	return &zendesk.Error{Op: op, Kind: zendesk.KindTemporary, Message: fmt.Sprintf(format, args...)}
}

// scrub removes every secret (of at least 4 characters) from s.
func scrub(s string, secrets []string) string {
	for _, sec := range secrets {
		if len(sec) >= 4 {
			s = strings.ReplaceAll(s, sec, "[redacted]")
		}
	}
	return s
}

// oneLine collapses whitespace, drops control characters and truncates.
func oneLine(s string, limit int) string {
	s = strings.ToValidUTF8(s, "?")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	return textx.Truncate(s, limit)
}

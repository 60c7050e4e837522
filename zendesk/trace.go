package zendesk

import (
	"context"
	"net/http/httptrace"
	"sync/atomic"
)

// writeTrace records whether any of a request reached the connection: it
// tells "nothing was sent" (not ambiguous) from "sent, answer lost".
type writeTrace struct {
	traced atomic.Bool // the transport reported connection events
	wrote  atomic.Bool // headers (at least) were written
}

func (t *writeTrace) with(ctx context.Context) context.Context {
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GetConn:      func(string) { t.traced.Store(true) },
		WroteHeaders: func() { t.wrote.Store(true) },
		WroteRequest: func(httptrace.WroteRequestInfo) { t.wrote.Store(true) },
	})
}

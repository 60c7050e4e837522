package zendesktest_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/deskrelay/deskrelay/zendesk"
	"github.com/deskrelay/deskrelay/zendesk/zendesktest"
)

// An agent replies in the fake Zendesk; the fake calls the webhook, signed.
func ExampleServer_AgentComment() {
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		err := zendesk.VerifySignature("secret", body, r.Header.Get(zendesk.HeaderSignatureTimestamp), r.Header.Get(zendesk.HeaderSignature), time.Now(), 0)
		fmt.Println(r.Header.Get("User-Agent"), "signature ok:", err == nil)
	}))
	defer receiver.Close()

	srv, err := zendesktest.Start(zendesktest.Config{})
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	srv.AddWebhook(receiver.URL, "secret", zendesktest.EventCommentAdded)
	id := srv.CreateTicket(zendesk.NewTicket{ExternalID: "conv_42", Comment: zendesk.CommentInput{Body: "Help!", Public: true}})
	srv.AgentComment(id, "On it", true)
	fmt.Println(len(srv.Comments(id)), "comments")
	// Output:
	// Zendesk Webhook signature ok: true
	// 2 comments
}

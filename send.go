package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/deskrelay/deskrelay/internal/validate"
)

func cmdSend(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet(env, "send", "send --conversation ID --body TEXT [flags]", sendSettings)
	resolve := fs.settings()
	conv := fs.String("conversation", "", "conversation id (required)")
	body := fs.String("body", "", "message text (required)")
	id := fs.String("id", "", "message id (default: a random msg_… id)")
	seq := fs.Int("sequence", 0, "position in the conversation (default: arrival order)")
	email := fs.String("email", "", "author's email")
	authorID := fs.String("author-id", "", "author's id on the platform")
	name := fs.String("name", "", "author's name")
	subject := fs.String("subject", "", "ticket subject (first message only)")
	server := fs.String("server", "", "daemon URL (default: http:// + DESKRELAY_LISTEN)")
	acct := fs.String("account", "", "the Zendesk account (a name from DESKRELAY_ACCOUNTS_FILE; default: default)")
	if err := fs.parse(args); err != nil {
		return err
	}
	v, err := resolve()
	if err != nil {
		return err
	}
	var p problems
	if *conv == "" {
		p.add("--conversation", "required")
	}
	if strings.TrimSpace(*body) == "" {
		p.add("--body", "required")
	}
	if *acct != "" {
		if problem := validate.AccountName(*acct); problem != "" {
			p.add("--account", "%s", problem)
		}
	}
	if *email == "" && *authorID == "" {
		p.add("--email", "required (or --author-id)")
	}
	if v["DESKRELAY_INGEST_TOKEN"] == "" {
		p.add("DESKRELAY_INGEST_TOKEN", "required (the daemon's ingest token)")
	}
	if err := p.err(); err != nil {
		return err
	}
	if *id == "" {
		b := make([]byte, 10)
		_, _ = rand.Read(b)
		*id = "msg_" + hex.EncodeToString(b)
	}
	msg := sendMessage(*id, *conv, *body, *subject, *acct, *seq, map[string]string{"id": *authorID, "name": *name, "email": *email})
	base := *server
	if base == "" {
		base = "http://" + v["DESKRELAY_LISTEN"]
	}
	raw, _ := json.Marshal(msg)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(base, "/")+"/v1/messages", bytes.NewReader(raw))
	if err != nil {
		return fmt.Errorf("--server: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+v["DESKRELAY_INGEST_TOKEN"])
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		fmt.Fprintf(env.stderr, "post message: %v\n", err)
		return exitCode(1)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	fmt.Fprintf(env.stdout, "%d %s\n", resp.StatusCode, bytes.TrimSpace(out))
	if resp.StatusCode >= 300 {
		return exitCode(1)
	}
	return nil
}

// sendMessage is the POST /v1/messages body send posts.
func sendMessage(id, conv, body, subject, account string, seq int, author map[string]string) map[string]any {
	msg := map[string]any{
		"id":              id,
		"conversation_id": conv,
		"author":          author,
		"body":            body,
		"created_at":      time.Now().UTC().Format(time.RFC3339),
	}
	if seq > 0 {
		msg["sequence"] = seq
	}
	if subject != "" {
		msg["subject"] = subject
	}
	if account != "" {
		msg["account"] = account
	}
	return msg
}

package sink_test

import (
	"context"
	"testing"
	"time"

	"github.com/deskrelay/deskrelay/internal/events"
	"github.com/deskrelay/deskrelay/internal/sink"
	"github.com/deskrelay/deskrelay/zendesk"
)

// stubReader serves comments and authors from memory and counts calls.
type stubReader struct {
	comments map[int64][]zendesk.Comment
	authors  map[int64]events.Author
	calls    int
}

func (s *stubReader) Comments(_ context.Context, ticketID int64) ([]zendesk.Comment, error) {
	s.calls++
	c, ok := s.comments[ticketID]
	if !ok {
		return nil, &zendesk.Error{Op: "list comments", Status: 404, Kind: zendesk.KindNotFound}
	}
	return c, nil
}

func (s *stubReader) Author(_ context.Context, id int64) (events.Author, error) {
	s.calls++
	if a, ok := s.authors[id]; ok {
		return a, nil
	}
	return events.Author{ID: id, Role: events.RoleEndUser}, nil
}

func TestResolveComment(t *testing.T) {
	yes, no := true, false
	tests := []struct {
		name      string
		ticket    int64
		ref       events.CommentRef
		want      string // event id, or the reason
		wantCalls int
	}{
		{"AgentReplyResolved", 1001, events.CommentRef{ID: 10, Public: &yes, AuthorID: 9}, "zd:comment:10", 3},
		{"AuthorUnknownFromBodyResolved", 1001, events.CommentRef{ID: 10}, "zd:comment:10", 2},
		{"UnmanagedNoCall", 2002, events.CommentRef{ID: 10, AuthorID: 9}, events.SkipUnmanaged, 0},
		{"OwnCommentNoCall", 1001, events.CommentRef{ID: 777, AuthorID: 9}, events.SkipOwnComment, 0},
		{"PrivateNoCall", 1001, events.CommentRef{ID: 10, Public: &no, AuthorID: 9}, events.SkipPrivate, 0},
		{"EndUserOneCall", 1001, events.CommentRef{ID: 11, AuthorID: 77}, events.SkipEndUser, 1},
		{"DeletedCommentGone", 1001, events.CommentRef{ID: 12, AuthorID: 9}, events.SkipGone, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, sink.PublisherConfig{})
			r := &stubReader{
				comments: map[int64][]zendesk.Comment{1001: {{ID: 10, AuthorID: 9, Body: "hi", Public: true, CreatedAt: t0}, {ID: 11, AuthorID: 77}}},
				authors:  map[int64]events.Author{9: {ID: 9, Name: "Agent", Role: events.RoleAgent}},
			}
			pl := &events.Payload{TicketID: tt.ticket, Status: "open", Comment: &tt.ref}
			ev, reason, err := f.pub.ResolveComment(context.Background(), pl, r, events.SourceInvocation, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			got := reason
			if ev != nil {
				got = ev.ID
				if ev.Comment.Author.Name != "Agent" || ev.Source != events.SourceInvocation || !ev.OccurredAt.Equal(t0) {
					t.Fatalf("event %+v", ev)
				}
			}
			if got != tt.want || r.calls != tt.wantCalls {
				t.Fatalf("got %q with %d calls, want %q with %d", got, r.calls, tt.want, tt.wantCalls)
			}
		})
	}
}

package reconcile

import (
	"context"
	"fmt"
	"testing"
	"time"

	zdbudget "github.com/deskrelay/deskrelay/internal/budget"
	"github.com/deskrelay/deskrelay/zendesk/zendesktest"
)

// BenchmarkBackfillOutage backfills a 6-hour outage of a busy account: 20,000
// ticket events (agent replies and status changes on 200 managed tickets,
// and 10 % on tickets deskrelay does not manage) through the fake's
// incremental export, with its 1,000-event pages and its 10 requests per
// window. The window is scaled down from Zendesk's minute (6s; with -short
// 1s, 2,000 events over 36 minutes, pages of 100) so that the run takes
// seconds; the floor is the time the export's rate limit alone imposes on
// the pages read (floor((requests-1)/10) windows), and at_zendesk_s projects
// the run to Zendesk's real one-minute window (the floor at 60s plus the
// measured time above the floor).
//
//	go test -run '^$' -bench BackfillOutage -benchtime 1x ./reconcile/
func BenchmarkBackfillOutage(b *testing.B) {
	nEvents, outage, window, pageSize := 20000, 6*time.Hour, 6*time.Second, 1000
	if testing.Short() {
		nEvents, outage, window, pageSize = 2000, 36*time.Minute, time.Second, 100
	}
	const limit = 10
	for b.Loop() {
		b.StopTimer()
		e := newEnv(b, zendesktest.Config{ExportLimit: limit, Window: window, ExportPageSize: pageSize})
		r := e.reconciler(b, Config{ExportLimit: limit, ExportWindow: window},
			func(d *Deps) { d.Limiter = zdbudget.NewLimiter(e.rdb, 100000) })
		var managed, other []int64
		for range 200 {
			managed = append(managed, e.managedTicket(b))
		}
		for range 20 {
			other = append(other, e.unmanagedTicket(b))
		}
		start := e.clock.Now()
		step := outage / time.Duration(nEvents)
		statuses := []string{"pending", "open"}
		for i := range nEvents {
			e.clock.Advance(step)
			var id int64
			if i%10 == 9 {
				id = other[i%len(other)]
			} else {
				id = managed[i%len(managed)]
			}
			if i%5 == 4 {
				e.zd.SetStatus(id, statuses[(i/len(managed))%2])
			} else {
				e.zd.AgentComment(id, "reply", true)
			}
		}
		e.clock.Advance(2 * time.Minute)
		b.StartTimer()

		t0 := time.Now()
		rep, err := r.Backfill(context.Background(), Window{Since: start}, Options{})
		took := time.Since(t0)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		exports := e.zd.CountRequests("GET", "/api/v2/incremental")
		floorAt := func(w time.Duration) time.Duration { return time.Duration((exports-1)/limit) * w }
		floor := floorAt(window)
		atZendesk := floorAt(time.Minute) + max(took-floor, 0)
		b.ReportMetric(float64(rep.Enqueued+rep.AlreadyDelivered)/float64(rep.ZendeskRequests), "events/request")
		b.ReportMetric(float64(rep.EventsFound), "events")
		b.ReportMetric(float64(rep.ZendeskRequests), "requests")
		b.ReportMetric(took.Seconds(), "backfill_s")
		b.ReportMetric(floor.Seconds(), "floor_s")
		if floor > 0 {
			b.ReportMetric(took.Seconds()/floor.Seconds(), "x_floor")
		}
		b.ReportMetric(atZendesk.Seconds(), "at_zendesk_s")
		b.ReportMetric(0, "ns/op")
		if rep.Enqueued == 0 || !rep.Complete {
			b.Fatalf("report %+v", rep)
		}
		if testing.Verbose() {
			fmt.Printf("pages %d, export requests %d, enqueued %d, filtered %v, waited %s\n",
				rep.Pages, exports, rep.Enqueued, rep.Filtered, rep.RateLimitWait)
		}
		b.StartTimer()
	}
}

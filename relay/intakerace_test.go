package relay_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// Several POSTs of one new id at once: exactly one 202; the others 200
// (same content) or 409 (other content); one task per id.
func TestIntakeConcurrentDuplicates(t *testing.T) {
	e := newEnv(t, envOptions{noWorkers: true})
	srv := intakeServer(t, e.relay)
	url := srv.URL + "/v1/messages"
	const rounds, posts = 10, 8
	for round := range rounds {
		id := fmt.Sprintf("race_%d", round)
		same := strings.Replace(goodBody, `"msg_1"`, `"`+id+`"`, 1)
		other := strings.Replace(same, "The app crashes", "Other text", 1)
		statuses := make([]int, posts)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range posts {
			wg.Go(func() {
				body := same
				if i%4 == 3 {
					body = other
				}
				<-start
				statuses[i] = do(t, http.MethodPost, url, "application/json", ingestToken, body).status
			})
		}
		close(start)
		wg.Wait()
		count := map[int]int{}
		for _, s := range statuses {
			count[s]++
		}
		if count[http.StatusAccepted] != 1 || count[http.StatusAccepted]+count[http.StatusOK]+count[http.StatusConflict] != posts {
			t.Errorf("round %d: statuses %v, want exactly one 202 and the rest 200 or 409", round, statuses)
		}
	}
	if n := queueSize(t, e.insp); n != rounds {
		t.Errorf("outbound queue holds %d tasks, want %d (one per id)", n, rounds)
	}
}

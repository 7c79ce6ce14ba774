package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/revcent-import/revcent-import/ratelimit"
	"github.com/revcent-import/revcent-import/revcent/sandbox"
)

// deliveryNoise measures what a server allowing no burst sees from any
// client on this machine, and so what issue 14's burst-1 case costs a
// client at a fixed rate. A minimal client sends one request every 1/38 s, paced as the
// importer paces them, each on its own goroutine, into a sandbox
// recording arrivals. A request that arrives d late makes
// the gap to the next one d shorter. Against a server taking 40/s with no
// burst, a client holding a fixed rate r has every gap shortened by more
// than 1/r - 25 ms refused, and each refusal pauses it for the
// Retry-After (1 s). The best fixed rate's time for 3,000 rows, knowing
// this noise in advance, bounds what a fixed-rate client can reach here;
// one that spaces its next request from its last answer (the importer,
// since session 13) can do better, the late deliveries being seen.
func deliveryNoise(scale int) {
	n := 3000 / scale
	srv := startSandbox("--discard", "--record-arrivals")
	sent := spacedClient(srv.url, n, 38)
	arr := srv.dump().Arrivals
	srv.stop()
	fmt.Printf("## 12. Delivery noise: what a server allowing no burst sees\n\n")
	if len(arr) != len(sent) || len(arr) < 2 {
		fmt.Printf("%d requests sent, %d arrivals recorded: not comparable\n\n", len(sent), len(arr))
		return
	}
	slices.Sort(arr)
	late := make([]float64, len(arr)) // ms, arrival less send
	for i := range arr {
		late[i] = float64(arr[i]-sent[i]) / 1e6
	}
	var shrink []float64 // how much each gap came out shorter than it was sent, in ms
	for i := 1; i < len(late); i++ {
		shrink = append(shrink, late[i-1]-late[i])
	}
	sorted := slices.Sorted(slices.Values(late))
	at := func(p float64) float64 { return percentile(sorted, p) }
	over := func(ms float64) int {
		c := 0
		for _, s := range shrink {
			if s > ms {
				c++
			}
		}
		return c
	}
	const rows, limit, pause = 3000, 40.0, 1.0
	ideal := rows / limit
	bestRate, bestTime, bestRefused := 0.0, 0.0, 0.0
	for r := 25.0; r < limit; r += 0.1 {
		refused := float64(over(1000/r-1000/limit)) * rows / float64(len(shrink))
		if t := rows/r + refused*pause; bestTime == 0 || t < bestTime {
			bestRate, bestTime, bestRefused = r, t, refused
		}
	}
	fmt.Printf("A minimal client sends %d requests, one every 1/38 s (paced by the importer's limiter at burst 1), into `sandbox --discard --record-arrivals`. Lateness is each request's arrival less its send, in ms; a gap shrinks when the request before it came later than the one after. Against a server at 40/s allowing no burst (`Retry-After: 1`), a client at a fixed rate r is refused once for every gap shrunk by more than 1/r - 25 ms; the bound is the best fixed rate's time for 3,000 rows (scaled from these gaps), over the ideal 75 s.\n\n", n)
	fmt.Printf("| lateness p50 | p99 | p99.9 | max | gaps shrunk by over 0.25 / 0.5 / 1 / 2 / 3 / 5 ms | best fixed rate | its refusals in 3,000 | bound |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n")
	fmt.Printf("| %.2f | %.2f | %.2f | %.2f | %d / %d / %d / %d / %d / %d | %.1f/s | %.0f | **%.3fx** |\n\n",
		at(0.5), at(0.99), at(0.999), sorted[len(sorted)-1], over(0.25), over(0.5), over(1), over(2), over(3), over(5), bestRate, bestRefused, bestTime/ideal)
}

// spacedClient sends n creates to url, one every 1/rate s, paced as the
// importer paces them at --burst 1 (ratelimit's Wait and Start), each on
// its own goroutine, and returns when each was sent (unix ns), once all
// are answered.
func spacedClient(url string, n int, rate float64) []int64 {
	client := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	lim := ratelimit.New(rate, 1)
	ctx := context.Background()
	sent := make([]int64, 0, n)
	var wg sync.WaitGroup
	for i := range n {
		if lim.Wait(ctx) != nil || lim.Start(ctx) != nil {
			break // only a context's end stops them, and this one has none
		}
		body := fmt.Appendf(nil, `{"campaign":"Spring Promo","first_name":"Noise","last_name":"Client","email":"noise%d@example.com"}`, i)
		sent = append(sent, time.Now().UnixNano())
		wg.Go(func() {
			req, _ := http.NewRequest("POST", url+"/customers", bytes.NewReader(body))
			req.Header.Set("x-api-key", sandbox.DefaultAPIKey)
			req.Header.Set("Content-Type", "application/json")
			if resp, err := client.Do(req); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	return sent
}

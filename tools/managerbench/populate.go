package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// unplaceable is a constraint no node satisfies: the tasks stay pending in
// the managers' store and no container runs.
const unplaceable = "node.labels.managerbench==never"

// currentTasks is the exporter's task filter.
const currentTasks = `{"desired-state":["running","ready","complete"]}`

// populate creates services until there are size of them, through the
// leader's Engine API, several requests at a time (far faster than the
// CLI), then waits until the orchestrator has made every task.
func (b *bench) populate(size int) error {
	if size < b.services {
		return fmt.Errorf("sizes must grow: %d after %d", size, b.services)
	}
	t0 := time.Now()
	api := "/v" + b.api + "/services/create"
	var next atomic.Int64
	next.Store(int64(b.services))
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			for {
				i := int(next.Add(1))
				if i > size {
					return
				}
				spec, _ := json.Marshal(map[string]any{
					"Name": fmt.Sprintf("bench-%05d", i),
					"TaskTemplate": map[string]any{
						"ContainerSpec": map[string]any{"Image": "swarmtest/workload:latest"},
						"Placement":     map[string]any{"Constraints": []string{unplaceable}},
					},
					"Mode": map[string]any{"Replicated": map[string]any{"Replicas": b.o.replicas}},
				})
				if err := post(b.leader.HTTPClient(), api, spec); err != nil {
					errs <- fmt.Errorf("creating service %d: %w", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	b.services = size
	logf("%d services created in %v; waiting for their %d tasks", size, time.Since(t0).Round(time.Second), size*b.o.replicas)
	want := size * b.o.replicas
	deadline := time.Now().Add(10 * time.Minute)
	for {
		var tasks []json.RawMessage
		err := b.leader.GetJSON(context.Background(), "/v"+b.api+"/tasks?filters="+url.QueryEscape(currentTasks), &tasks)
		if err == nil && len(tasks) == want {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d tasks after 10 minutes, want %d (%v)", len(tasks), want, err)
		}
		time.Sleep(2 * time.Second)
	}
	logf("%d tasks pending after %v", want, time.Since(t0).Round(time.Second))
	// Let the scheduler and the store settle before measuring anything.
	time.Sleep(10 * time.Second)
	return nil
}

func post(c *http.Client, path string, body []byte) error {
	req, err := http.NewRequest(http.MethodPost, "http://docker"+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, b)
	}
	return nil
}

// sizes returns the size of each answer a read fetches, from the leader.
func (b *bench) sizes() (map[string]int, error) {
	out := map[string]int{}
	for ep, path := range readPaths(b.api) {
		st, body, err := b.leader.Get(context.Background(), path)
		if err != nil {
			return nil, err
		}
		if st != http.StatusOK {
			return nil, fmt.Errorf("%s: HTTP %d", path, st)
		}
		out[ep] = len(body)
	}
	return out, nil
}

// readPaths are the four answers of a read (the ping aside), by endpoint.
func readPaths(version string) map[string]string {
	return map[string]string{
		"info":     "/v" + version + "/info",
		"nodes":    "/v" + version + "/nodes",
		"services": "/v" + version + "/services?status=true",
		"tasks":    "/v" + version + "/tasks?filters=" + url.QueryEscape(currentTasks),
	}
}

// Command workload is the tiny static program that the swarmtest harness
// packs into the image swarmtest/workload:latest (FROM scratch) and runs as
// the tasks of test services.
//
// Usage (the first argument selects the mode; no argument means serve):
//
//	workload [serve [ADDR]]       answer HTTP on ADDR (default :8080) until signalled
//	workload sleep                do nothing until signalled
//	workload exit CODE [SECONDS]  wait SECONDS (default 0, fractions allowed), then exit with CODE
//	workload dockerinfo [SOCKET]  GET /info over SOCKET (default /var/run/docker.sock),
//	                              print the daemon's Name and exit 0
//
// SIGTERM and SIGINT end every mode at once with status 0, so that stopping a
// task never waits for the daemon's stop timeout.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

func main() {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sig
		os.Exit(0)
	}()

	args := os.Args[1:]
	mode := "serve"
	if len(args) > 0 {
		mode, args = args[0], args[1:]
	}
	switch mode {
	case "serve":
		addr := ":8080"
		if len(args) > 0 {
			addr = args[0]
		}
		serve(addr)
	case "sleep":
		select {}
	case "exit":
		os.Exit(exitAfter(args))
	case "dockerinfo":
		sock := "/var/run/docker.sock"
		if len(args) > 0 {
			sock = args[0]
		}
		if err := dockerInfo(sock); err != nil {
			fmt.Fprintln(os.Stderr, "dockerinfo:", err)
			os.Exit(1)
		}
	default:
		fmt.Fprintf(os.Stderr, "workload: unknown mode %q (want serve, sleep, exit, dockerinfo)\n", mode)
		os.Exit(2)
	}
}

func serve(addr string) {
	host, _ := os.Hostname()
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s\n", host)
	})
	if err := http.ListenAndServe(addr, nil); err != nil {
		fmt.Fprintln(os.Stderr, "serve:", err)
		// Keep running without a listener rather than crash-looping the task.
		select {}
	}
}

func exitAfter(args []string) int {
	code := 0
	if len(args) > 0 {
		c, err := strconv.Atoi(args[0])
		if err != nil {
			fmt.Fprintf(os.Stderr, "exit: bad code %q\n", args[0])
			return 2
		}
		code = c
	}
	if len(args) > 1 {
		s, err := strconv.ParseFloat(args[1], 64)
		if err != nil {
			fmt.Fprintf(os.Stderr, "exit: bad seconds %q\n", args[1])
			return 2
		}
		time.Sleep(time.Duration(s * float64(time.Second)))
	}
	return code
}

func dockerInfo(sock string) error {
	c := &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}},
	}
	resp, err := c.Get("http://docker/info")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /info: %s: %s", resp.Status, body)
	}
	var info struct{ Name string }
	if err := json.Unmarshal(body, &info); err != nil {
		return err
	}
	fmt.Println(info.Name)
	return nil
}

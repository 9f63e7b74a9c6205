// Command demo runs swarm_exporter on this machine: against its own swarm
// when the local Docker daemon (or DOCKER_HOST) is a swarm manager, and
// otherwise against a throwaway 3-manager, 2-worker swarm of real dockerd
// processes (internal/swarmtest) with a few services, torn down on Ctrl-C.
//
//	make run            # builds the exporter, then runs this
//	go run ./tools/demo -exporter ./swarm_exporter -listen 127.0.0.1:9675
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/swarm-exporter/swarm_exporter/internal/swarmtest"
	"github.com/swarm-exporter/swarm_exporter/swarm"
)

func main() {
	exporter := flag.String("exporter", "./swarm_exporter", "the exporter binary")
	listen := flag.String("listen", "127.0.0.1:9675", "address the exporter listens on")
	forceDemo := flag.Bool("demo", false, "use a demo swarm even if this machine is a swarm manager")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("demo: ")

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)

	if !*forceDemo && localManager() {
		log.Printf("the local Docker daemon is a swarm manager: watching its swarm")
		os.Exit(runExporter(*exporter, *listen, "", sig))
	}
	if os.Geteuid() != 0 {
		log.Fatal("no swarm manager here, and a demo swarm needs root (it starts dockerd processes in network namespaces): run as root")
	}

	log.Printf("no swarm manager here: starting a demo swarm of 3 managers and 2 workers (about 30 s)")
	s, err := startSwarm(sig)
	if err != nil {
		log.Fatal(err)
	}
	// The harness tears its swarms down on SIGINT/SIGTERM by itself and
	// then ends the process with the signal, racing the demo's own,
	// ordered stop (exporter first, then the swarm, exit 0). Take the
	// signals over from it.
	signal.Reset(syscall.SIGINT, syscall.SIGTERM)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	code := 0
	if err := createServices(s); err != nil {
		log.Print(err)
		code = 1
	} else {
		code = runExporter(*exporter, *listen, s.Managers()[0].Host(), sig)
	}
	log.Printf("tearing the demo swarm down")
	if err := s.Close(); err != nil {
		log.Print(err)
		code = 1
	}
	os.Exit(code)
}

// startSwarm boots the demo swarm. A signal while it boots, or while it
// waits for another harness run to finish, cancels the start (the harness
// then removes what it started); the signal is left in sig.
func startSwarm(sig chan os.Signal) (*swarmtest.Swarm, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	started := make(chan struct{})
	defer close(started)
	go func() {
		select {
		case s := <-sig:
			log.Printf("%v: cancelling the start", s)
			cancel()
			sig <- s
		case <-started:
		}
	}()
	return swarmtest.Start(ctx, swarmtest.Options{Prefix: "swd", Subnet: "10.214.0.0/24", Logf: log.Printf})
}

// localManager reports whether DOCKER_HOST (or the default socket) is a
// manager whose cluster state can be read.
func localManager() bool {
	r, err := swarm.NewReader(swarm.Config{Timeout: 3 * time.Second})
	if err != nil {
		return false
	}
	defer r.Close()
	snap := r.Read(context.Background())
	return snap.Err == nil
}

func createServices(s *swarmtest.Swarm) error {
	img := swarmtest.WorkloadImage
	services := [][]string{
		{"--name", "web", "--replicas", "6", "--label", "com.docker.stack.namespace=shop", img},
		{"--name", "agent", "--mode", "global", img},
		{"--name", "batch", "--mode", "replicated-job", "--replicas", "3", "--restart-condition", "none", img, "exit", "0", "5"},
		{"--name", "ghost", "--replicas", "2", "nosuchimage:1"},
	}
	for _, args := range services {
		if _, err := s.CreateService(args...); err != nil {
			return fmt.Errorf("creating service %s: %w", args[1], err)
		}
	}
	return s.WaitRunning("web", 6, 60*time.Second)
}

func runExporter(binary, listen, host string, sig chan os.Signal) int {
	args := []string{"--web.listen-address=" + listen}
	if host != "" {
		args = append(args, "--docker.host="+host)
	}
	cmd := exec.Command(binary, args...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// Its own process group: Ctrl-C reaches the demo, which stops the
		// exporter itself, instead of ending the exporter behind its back.
		Setpgid: true,
		// And it never outlives the demo.
		Pdeathsig: syscall.SIGTERM,
	}
	if err := cmd.Start(); err != nil {
		log.Printf("starting %s: %v (build it with `make build`)", binary, err)
		return 1
	}
	url := "http://" + listen
	fmt.Printf(`
swarm_exporter is running.
  metrics:      %[1]s/metrics
  status JSON:  %[1]s/api/v1/status
  status table: %[2]s status --output=table %[3]s
`, url, binary, hostFlag(host))
	if host != "" {
		fmt.Printf(`  the swarm:    DOCKER_HOST=%s docker service ls
                (the demo's "ghost" service has an image that exists nowhere: it is KO;
                 remove it with "docker service rm ghost" and watch the status turn OK)
`, host)
	}
	fmt.Println("Press Ctrl-C to stop.")

	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case s := <-sig:
		// A second signal ends the demo at once; the next run, or
		// `go run ./internal/swarmtest/cmd/swarmup -cleanup`, clears
		// what it leaves.
		signal.Reset(syscall.SIGINT, syscall.SIGTERM)
		log.Printf("%v: stopping the exporter", s)
		cmd.Process.Signal(syscall.SIGTERM)
		<-done
		return 0
	case err := <-done:
		log.Printf("the exporter stopped: %v", err)
		return 1
	}
}

func hostFlag(host string) string {
	if host == "" {
		return ""
	}
	return "--docker.host=" + strings.TrimSpace(host)
}

// Command swarmup boots a swarmtest swarm and keeps it up until interrupted,
// for poking at real daemons by hand:
//
//	go run ./internal/swarmtest/cmd/swarmup -managers 3 -workers 2
//	go run ./internal/swarmtest/cmd/swarmup -engine 29 -prefix swn -subnet 10.213.9.0/24
//	DOCKER_HOST=unix:///var/lib/swarmtest/swx/m1/docker.sock /usr/bin/docker node ls
//
// With -cleanup it only clears the leftovers of earlier runs and exits.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/swarm-exporter/swarm_exporter/internal/swarmtest"
)

func main() {
	var o swarmtest.Options
	flag.IntVar(&o.Managers, "managers", 3, "number of managers")
	flag.IntVar(&o.Workers, "workers", 2, "number of workers")
	flag.IntVar(&o.Standalone, "standalone", 0, "number of daemons outside the swarm")
	tlsNodes := flag.String("tls", "", "comma-separated nodes that also listen with TLS on :2376")
	flag.StringVar(&o.Prefix, "prefix", "", "name prefix (default swx)")
	flag.StringVar(&o.Subnet, "subnet", "", "the nodes' IPv4 /24 (default "+swarmtest.DefaultSubnet+")")
	engine := flag.String("engine", "", "engine of the nodes: 20.10 or 29 (default $"+swarmtest.EngineEnv+", else 20.10)")
	workerEngine := flag.String("worker-engine", "", "engine of the workers, when not -engine's")
	cleanup := flag.Bool("cleanup", false, "only clear leftovers of earlier runs")
	flag.Parse()
	if *cleanup {
		if err := swarmtest.Cleanup(); err != nil {
			log.Fatal(err)
		}
		return
	}
	if *engine != "" {
		e, err := swarmtest.LookupEngine(*engine)
		if err != nil {
			log.Fatal(err)
		}
		o.Engine = e
	}
	if *workerEngine != "" {
		e, err := swarmtest.LookupEngine(*workerEngine)
		if err != nil {
			log.Fatal(err)
		}
		o.NodeEngines = map[string]swarmtest.Engine{}
		for i := 1; i <= o.Workers; i++ {
			o.NodeEngines[fmt.Sprintf("w%d", i)] = e
		}
	}
	if *tlsNodes != "" {
		o.TLSNodes = strings.Split(*tlsNodes, ",")
	}
	o.Logf = log.Printf
	// Take over SIGINT/SIGTERM before Start so that the harness's own
	// handler does not end the process first.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	s, err := swarmtest.Start(ctx, o)
	cancel()
	if err != nil {
		log.Fatal(err)
	}
	for _, n := range s.Nodes() {
		fmt.Printf("%-3s %-10s %-9s %-26s %-14s %s %s\n", n.Name, n.Hostname, n.Role(), n.ID(), n.Engine().Version, n.IP, n.Host())
	}
	if m := s.TLS(); m != nil {
		fmt.Printf("TLS client certs: %s (untrusted: %s, wrong CA: %s)\n", m.ClientDir, m.BadClientDir, m.WrongCADir)
	}
	fmt.Println("ready; interrupt to tear down")
	<-sig
	if err := s.Close(); err != nil {
		log.Fatal(err)
	}
}

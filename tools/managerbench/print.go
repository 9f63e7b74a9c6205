package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

func printMachine(b *bench) {
	cpu := "unknown CPU"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	goVersion, _ := exec.Command("go", "version").Output()
	fmt.Printf("machine: %s, %d cores; %s; load average %s\n", cpu, runtime.NumCPU(), strings.TrimSpace(string(goVersion)), loadavg())
	fmt.Printf("swarm: %d managers, engine %s; leader %s, follower %s\n", len(b.s.Managers()), b.engine, b.leader.Name, b.follower.Name)
	fmt.Printf("settings: %d tasks per service, %d reads per target, %d floor runs, N×M: interval %v, %d rounds, --read.max-age=%v\n",
		b.o.replicas, b.o.reads, b.o.floorRuns, b.o.interval, b.o.rounds, b.o.maxAge)
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func printTables(o options, rows []sizeResult) {
	fmt.Printf("\n### The swarm (load average %s)\n\n", loadavg())
	fmt.Println("| services | tasks (pending) | /services?status=true | current tasks | idle CPU, leader | idle CPU, followers |")
	fmt.Println("| --: | --: | --: | --: | --: | --: |")
	for _, r := range rows {
		leader, others := split(r)
		fmt.Printf("| %s | %s | %s | %s | %.3f | %.3f |\n", thousands(r.services), thousands(r.tasks),
			mb(r.bytes["services"]), mb(r.bytes["tasks"]), leader, others)
	}

	fmt.Println("\n### One exporter read (default flags: everything on every scrape)")
	fmt.Println()
	fmt.Println("| services | read through | curl, one after the other | curl, in parallel | scrape p50 | scrape p95 | p50 / sequential floor | leader CPU per read | follower CPU per read |")
	fmt.Println("| --: | --- | --: | --: | --: | --: | --: | --: | --: |")
	for _, r := range rows {
		for _, t := range r.targets {
			role, follower := "leader", "–"
			if !t.leader {
				role, follower = "follower", cpuS(t.localCPU)
			}
			fmt.Printf("| %s | %s | %s | %s | %s | %s | %.1f× | %s | %s |\n", thousands(r.services), role,
				ms(t.floorSeq), ms(t.floorPar), ms(t.p50), ms(t.p95), ratio(t.p50, t.floorSeq), cpuS(t.leaderCPU), follower)
		}
	}

	fmt.Printf("\n### The leader per scrape interval: N instances × M scrapers each (interval %v, %d intervals)\n\n", o.interval, o.rounds)
	fmt.Println("| services | N × M | before: leader CPU | before: task lists | before: service lists | after: leader CPU | after: task lists | after: service lists | after: /nodes | followers' CPU before → after | scrape p95 before → after |")
	fmt.Println("| --: | --- | --: | --: | --: | --: | --: | --: | --: | --: | --: |")
	for _, r := range rows {
		for _, c := range r.nm {
			fmt.Printf("| %s | %d × %d | %s | %.1f | %.1f | %s | %.1f | %.1f | %.1f | %s → %s | %s → %s |\n", thousands(r.services), c.n, c.m,
				cpuS(c.before.leaderCPU), c.before.tasks, c.before.services,
				cpuS(c.after.leaderCPU), c.after.tasks, c.after.services, c.after.nodes,
				cpuS(c.before.othersCPU), cpuS(c.after.othersCPU),
				ms(c.before.p95), ms(c.after.p95))
		}
	}
	failed := false
	for _, r := range rows {
		for _, c := range r.nm {
			for _, mr := range []modeResult{c.before, c.after} {
				if mr.failed > 0 {
					failed = true
					fmt.Printf("\n%d services, %d × %d: %d of %d scrapes failed: %v\n", r.services, c.n, c.m, mr.failed, mr.scrapes, mr.failures)
				}
			}
		}
	}
	if !failed {
		fmt.Println("\nEvery scrape answered HTTP 200 with docker_swarm_up 1.")
	}
}

func split(r sizeResult) (leader, others float64) {
	for name, v := range r.idle {
		if len(r.targets) > 0 && r.targets[0].node == name {
			leader = v
		} else {
			others += v
		}
	}
	return leader, others
}

func ms(d time.Duration) string {
	if d >= time.Second {
		return fmt.Sprintf("%.2f s", d.Seconds())
	}
	return fmt.Sprintf("%d ms", d.Milliseconds())
}

func cpuS(v float64) string { return fmt.Sprintf("%.3f s", v) }

func ratio(a, b time.Duration) float64 {
	if b <= 0 {
		return 0
	}
	return float64(a) / float64(b)
}

func mb(n int) string {
	if n < 100_000 {
		return fmt.Sprintf("%.1f kB", float64(n)/1e3)
	}
	return fmt.Sprintf("%.1f MB", float64(n)/1e6)
}

func thousands(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

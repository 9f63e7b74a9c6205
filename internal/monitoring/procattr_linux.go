package monitoring

import (
	"os/exec"
	"syscall"
)

// dieWithTest makes the kernel kill a program the test started when the
// test process dies, even without running its cleanups (a timeout, a
// signal): no Prometheus or Alertmanager is left behind.
func dieWithTest(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

//go:build goexperiment.cgocheck2 && tinymls_testhooks

package tinymls

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestCgocheck2IsOn proves that `make cgocheck2` really runs with the strict
// cgo pointer checks: a child process that stores a Go pointer into C memory
// must be stopped by the runtime. Without the experiment the store goes
// unnoticed and this test fails.
func TestCgocheck2IsOn(t *testing.T) {
	if os.Getenv("TINYMLS_CGOCHECK_CANARY") == "1" {
		cgocheckCanary()
		return // reached only when the checks are off; the parent then fails
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestCgocheck2IsOn$", "-test.count=1")
	cmd.Env = append(os.Environ(), "TINYMLS_CGOCHECK_CANARY=1")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("the canary stored a Go pointer into C memory and was not stopped: cgocheck2 is off\n%s", out)
	}
	if !strings.Contains(string(out), "Go pointer stored into non-Go memory") {
		t.Fatalf("the canary failed, but not with cgocheck2's message:\n%s", out)
	}
}

package swarm_test

import (
	"bytes"
	"testing"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/swarm-exporter/swarm_exporter/swarm"
)

// The other decoders tolerate invalid UTF-8 (jsontext.AllowInvalidUTF8:
// "rather than failing a whole read over one odd label") and mangle it to
// U+FFFD. The tasks decoder must accept the same strings, and give the same
// IDs, or a task never matches its service.
func TestTasksDecodeOddStringsAsTheOtherLists(t *testing.T) {
	opts := jsonv2.JoinOptions(jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
	for _, in := range []string{
		`[{"ServiceID":"\ud800","DesiredState":"running"}]`, // lone surrogate escape
		"[{\"ServiceID\":\"a\xff\\n\"}]",                    // raw invalid byte and an escape
		"[{\"ServiceID\":\"a\xff\"}]",                       // raw invalid byte alone
		"[{\"ServiceID\":\"a\",\"Status\":{\"State\":\"running\xff\\u0000\"}}]",
	} {
		var want []refTask
		if err := jsonv2.Unmarshal([]byte(in), &want, opts); err != nil {
			t.Fatalf("%q: json v2 with the decoders' options: %v", in, err)
		}
		var dec swarm.TasksDecoder
		var got swarm.Tasks
		if err := dec.Decode(bytes.NewReader([]byte(in)), &got); err != nil {
			t.Errorf("%q: the tasks decoder fails the whole read: %v", in, err)
			continue
		}
		if len(got.List) != 1 || got.ServiceIDs[got.List[0].Service] != want[0].ServiceID {
			t.Errorf("%q: service ID %q, the services decoder would see %q", in, got.ServiceIDs, want[0].ServiceID)
		}
	}
}

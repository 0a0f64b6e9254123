package kafka

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runnel-log/runnel"
)

// kcat (librdkafka) against the server; a machine without kcat skips
// these tests (see requireClient).
func kcat(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("kcat")
	if err != nil {
		requireClient(t, "kcat not found", "Debian's kcat")
	}
	return path
}

// runKcat runs kcat with stdin and returns its standard output.
func runKcat(t *testing.T, bin, stdin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("kcat %s: %v\nstderr:\n%s\nstdout:\n%s", strings.Join(args, " "), err, errb.String(), out.String())
	}
	return out.String()
}

func TestKcat(t *testing.T) {
	bin := kcat(t)
	ts := startServer(t, fastGroups)
	ts.createTopic("kc", 2)

	// -P with keys and headers.
	runKcat(t, bin, "ada:2 coffees\ngrace:1 tea\nada:1 croissant\n",
		"-b", ts.addr, "-P", "-t", "kc", "-K", ":", "-H", "source=kcat", "-H", "n=1")
	recs := readNative(t, ts.log, "kc", 3)
	values := map[string]runnel.Record{}
	for _, r := range recs {
		values[string(r.Value)] = r
	}
	for key, value := range map[string]string{"ada": "2 coffees", "grace": "1 tea"} {
		r, ok := values[value]
		if !ok || string(r.Key) != key {
			t.Fatalf("record %q stored as %+v", value, r)
		}
		if len(r.Headers) != 2 || r.Headers[0].Key != "source" || string(r.Headers[0].Value) != "kcat" || r.Headers[1].Key != "n" {
			t.Fatalf("headers of %q: %+v", value, r.Headers)
		}
	}
	// Keys decide partitions the same way in one producer: ada's records
	// share one.
	if values["2 coffees"].Partition != values["1 croissant"].Partition {
		t.Fatal("one key in two partitions")
	}

	// -C -o beginning -e, records produced by the Go API included.
	produceNative(t, ts.log, "kc", []runnel.Record{{Key: []byte("native"), Value: []byte("from Go"), Partition: 1,
		Headers: []runnel.Header{{Key: "h", Value: []byte("v")}}}})
	out := runKcat(t, bin, "", "-b", ts.addr, "-C", "-t", "kc", "-o", "beginning", "-e", "-f", "%k=%s [%h]\n")
	for _, want := range []string{"ada=2 coffees [source=kcat,n=1]", "grace=1 tea [source=kcat,n=1]", "ada=1 croissant [source=kcat,n=1]", "native=from Go [h=v]"} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("kcat -C output lacks %q:\n%s", want, out)
		}
	}

	// -P with each codec librdkafka has, read back with -C.
	ts.createTopic("kcz", 1)
	var want strings.Builder
	for _, codec := range []string{"none", "gzip", "snappy", "lz4", "zstd"} {
		runKcat(t, bin, codec+":1\n"+codec+":2\n", "-b", ts.addr, "-P", "-t", "kcz", "-K", ":", "-z", codec)
		fmt.Fprintf(&want, "%s=1\n%s=2\n", codec, codec)
	}
	if out := runKcat(t, bin, "", "-b", ts.addr, "-C", "-t", "kcz", "-o", "beginning", "-e", "-f", "%k=%s\n"); out != want.String() {
		t.Errorf("kcat read back its records of each codec as\n%s\nwant\n%s", out, want.String())
	}

	// -L: metadata.
	out = runKcat(t, bin, "", "-b", ts.addr, "-L")
	if !strings.Contains(out, "1 brokers:") || !strings.Contains(out, `topic "kc" with 2 partitions`) {
		t.Errorf("kcat -L output:\n%s", out)
	}

	// -G: group consumption; the commits are runnel's, under a group id
	// outside the topic rule (an escaped directory, issue 13).
	const group = "app:prod"
	out = runKcat(t, bin, "", "-b", ts.addr, "-G", group, "-o", "beginning", "-c", "4", "-f", "%s\n",
		"-X", "session.timeout.ms=6000", "-X", "enable.auto.commit=true", "kc")
	if n := strings.Count(out, "\n"); n != 4 {
		t.Fatalf("kcat -G printed %d records:\n%s", n, out)
	}
	waitFor(t, "kcat's commits in runnel", func() bool {
		info, err := ts.log.DescribeGroup(group)
		if err != nil {
			return false
		}
		var total int64
		for _, gp := range info.Topics[0].Partitions {
			total += max(gp.Committed, 0)
		}
		return total == 4
	})
}

// TestKcatGroupOfTopics: a kcat -G member of two topics reads the records
// produced into one while its fetch waits on both, and goes on. (The
// other topic's wait, ended early for the records, was answered
// REQUEST_TIMED_OUT, on which kcat stops with "ERROR: Topic kb [0] error:
// Fetch from broker 0 failed: Broker: Request timed out".) Its fetches
// wait up to 3 s, so that each record arrives in one.
func TestKcatGroupOfTopics(t *testing.T) {
	bin := kcat(t)
	ts := startServer(t, fastGroups)
	topics := []string{"ka", "kb"}
	for _, topic := range topics {
		ts.createTopic(topic, 2)
	}
	cmd := exec.Command(bin, "-b", ts.addr, "-G", "kgrp", "-u", "-f", "%t %s\n", "-X", "auto.offset.reset=earliest",
		"-X", "fetch.wait.max.ms=3000", "ka", "kb")
	var out, errb syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var err error // of kcat, once exited is closed
	go func() {
		err = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	running := func() {
		select {
		case <-exited:
			t.Fatalf("kcat exited: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errb.String())
		default:
		}
	}
	// Once it has been at the end of every partition, each fetch names
	// them all.
	waitFor(t, "kcat to reach the end of each partition", func() bool {
		running()
		return strings.Count(errb.String(), "Reached end of topic") == 4
	})
	for i := range 4 {
		topic := topics[i%2]
		waitFor(t, "kcat's fetch to wait", func() bool {
			running()
			return ts.srv.waitingFetches.Load() > 0
		})
		value := fmt.Sprintf("r%d", i)
		produceNative(t, ts.log, topic, []runnel.Record{{Partition: i / 2 % 2, Value: []byte(value)}})
		waitFor(t, "kcat to print "+value, func() bool {
			running()
			return strings.Contains(out.String(), topic+" "+value+"\n")
		})
	}
	if strings.Contains(errb.String(), "ERROR") {
		t.Errorf("kcat reported an error:\n%s", errb.String())
	}
}

// TestKcatCooperativeStaticGroup: two kcat -G members with librdkafka's
// cooperative-sticky assignor and static instance ids share a topic's
// partitions, as runnel's locks split them, and read every record between
// them; when one is killed the other gets everything.
func TestKcatCooperativeStaticGroup(t *testing.T) {
	bin := kcat(t)
	ts := startServer(t, fastGroups)
	const parts = 4
	ts.createTopic("coop", parts)
	produceSpread(t, ts.log, "coop", parts, 5, "r")
	start := func(instance string) (*exec.Cmd, *syncBuffer) {
		cmd := exec.Command(bin, "-b", ts.addr, "-G", "coopgrp", "-o", "beginning", "-u", "-f", "%s\n",
			"-X", "partition.assignment.strategy=cooperative-sticky", "-X", "group.instance.id="+instance,
			"-X", "session.timeout.ms=2000", "-X", "heartbeat.interval.ms=200", "coop")
		var out syncBuffer
		cmd.Stdout = &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			cmd.Process.Kill()
			cmd.Wait()
		})
		return cmd, &out
	}
	// owners counts the partitions each runnel member owns ("": none).
	owners := func() map[string]int {
		if _, err := ts.log.DescribeGroup("coopgrp"); err != nil {
			return nil // not joined yet
		}
		n := map[string]int{}
		for _, o := range runnelOwners(t, ts.log, "coopgrp", "coop") {
			n[o]++
		}
		return n
	}
	a, aOut := start("a")
	waitFor(t, "kcat a to own every partition", func() bool {
		n := owners()
		return len(n) == 1 && n[""] == 0
	})
	_, bOut := start("b")
	waitFor(t, "kcat a and b to share the partitions", func() bool {
		n := owners()
		return len(n) == 2 && n[""] == 0
	})
	waitFor(t, "every record read by a or b", func() bool {
		read := map[string]bool{}
		for _, line := range strings.Split(aOut.String()+bOut.String(), "\n") {
			read[line] = line != ""
		}
		for p := range parts {
			for i := range 5 {
				if !read[fmt.Sprintf("r-%d-%d", p, i)] {
					return false
				}
			}
		}
		return true
	})
	a.Process.Kill()
	a.Wait()
	waitFor(t, "kcat b to own every partition after a was killed", func() bool {
		n := owners()
		return len(n) == 1 && n[""] == 0
	})
}

// TestKcatTransactional: kcat -P with a transactional.id fails at once,
// librdkafka naming runnel's refusal of the transaction coordinator
// (TRANSACTIONAL_ID_AUTHORIZATION_FAILED), and stores nothing. A
// retriable COORDINATOR_NOT_AVAILABLE had librdkafka look for the
// coordinator until init_transactions timed out, saying only that.
func TestKcatTransactional(t *testing.T) {
	bin := kcat(t)
	ts := startServer(t, nil)
	ts.createTopic("tx", 1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-b", ts.addr, "-P", "-t", "tx", "-X", "transactional.id=kcat-tx")
	cmd.Stdin = strings.NewReader("in a transaction\n")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "TRANSACTIONAL_ID_AUTHORIZATION_FAILED") || !strings.Contains(string(out), noTransactions) {
		t.Errorf("kcat with a transactional.id: %v\n%s\nwant a failure naming TRANSACTIONAL_ID_AUTHORIZATION_FAILED and %q", err, out, noTransactions)
	}
	if _, end, err := ts.log.PartitionOffsets("tx", 0); err != nil || end != 0 {
		t.Errorf("the topic ends at %d (%v) after a refused transaction, want 0", end, err)
	}
}

// TestKcatSASL: librdkafka authenticates with PLAIN, SCRAM-SHA-256 and
// SCRAM-SHA-512, and a wrong password is refused.
func TestKcatSASL(t *testing.T) {
	bin := kcat(t)
	ts := startServer(t, &Options{Credentials: testCredentials(t)})
	ts.createTopic("secret", 1)
	// Each refused kcat waits out its metadata timeout: the runs wait side
	// by side, not one after another.
	var wg sync.WaitGroup
	for _, mech := range []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"} {
		for _, password := range []string{"hunter2", "wrong"} {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				defer cancel()
				wait := "30" // seconds kcat waits for the metadata
				if password == "wrong" {
					wait = "2" // it never comes
				}
				cmd := exec.CommandContext(ctx, bin, "-b", ts.addr, "-L", "-m", wait,
					"-X", "security.protocol=SASL_PLAINTEXT", "-X", "sasl.mechanisms="+mech,
					"-X", "sasl.username=bob", "-X", "sasl.password="+password)
				out, err := cmd.CombinedOutput()
				listed := err == nil && strings.Contains(string(out), `topic "secret"`)
				if listed != (password == "hunter2") {
					t.Errorf("%s with password %s: listed %v, err %v\n%s", mech, password, listed, err, out)
				}
			})
		}
	}
	wg.Wait()
}

// TestKcatTLS: kcat over TLS, without SASL and with SCRAM-SHA-512 over it
// (librdkafka's SSL and SASL_SSL), produces a record and reads it back,
// checking the server's certificate against the CA it is given.
func TestKcatTLS(t *testing.T) {
	bin := kcat(t)
	for _, tc := range []struct {
		protocol string
		creds    *Credentials
		sasl     []string
	}{
		{"SSL", nil, nil},
		{"SASL_SSL", testCredentials(t), []string{"-X", "sasl.mechanisms=SCRAM-SHA-512", "-X", "sasl.username=bob", "-X", "sasl.password=hunter2"}},
	} {
		t.Run(tc.protocol, func(t *testing.T) {
			ts, ca := tlsServer(t, tc.creds)
			ts.createTopic("sealed", 1)
			args := append([]string{"-b", ts.addr, "-X", "security.protocol=" + tc.protocol, "-X", "ssl.ca.location=" + ca}, tc.sasl...)
			runKcat(t, bin, "k:over "+tc.protocol+"\n", append(args, "-P", "-t", "sealed", "-K", ":")...)
			want := "k over " + tc.protocol
			if got := readNative(t, ts.log, "sealed", 1)[0]; string(got.Key)+" "+string(got.Value) != want {
				t.Fatalf("stored %q %q, want %q", got.Key, got.Value, want)
			}
			out := runKcat(t, bin, "", append(args, "-C", "-t", "sealed", "-o", "beginning", "-e", "-f", "%k %s\n")...)
			if strings.TrimSpace(out) != want {
				t.Fatalf("kcat read %q, want %q", out, want)
			}
		})
	}
}

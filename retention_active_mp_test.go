package runnel

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"
)

func init() { childMains["retention-seal-writer"] = retentionSealWriterMain }

// rsRecords and rsSize are what the writer of
// TestRetentionAgeSealsActiveSegmentOfWriterProcess appends first.
const rsRecords, rsSize = 20, 100

// retentionSealWriterMain is a writer process: it opens $RUNNEL_RS_DIR in
// durability $RUNNEL_RS_DURABILITY, appends rsRecords records stamped
// hours ago to topic "t", says "ready", and at each line it reads appends
// the next record and prints "ack <offset>", until its input ends.
func retentionSealWriterMain() int {
	const who = "retention writer"
	d, err := parseTestDurability(os.Getenv("RUNNEL_RS_DURABILITY"))
	if err != nil {
		return mpFail(who, err)
	}
	l, err := Open(os.Getenv("RUNNEL_RS_DIR"), mpOptions(Options{Durability: d, RetentionInterval: -1}))
	if err != nil {
		return mpFail(who, err)
	}
	defer l.Close()
	p, err := l.Producer("t", &ProducerOptions{Partitioner: ManualPartitioner})
	if err != nil {
		return mpFail(who, err)
	}
	ctx := context.Background()
	old := time.Now().Add(-3 * time.Hour)
	for i := range rsRecords {
		if _, err := p.Send(ctx, Record{Value: payload(i, rsSize), Time: old}); err != nil {
			return mpFail(who, err)
		}
	}
	fmt.Println("ready")
	in := bufio.NewScanner(os.Stdin)
	for i := rsRecords; in.Scan(); i++ {
		pos, err := p.Send(ctx, Record{Value: payload(i, rsSize)})
		if err != nil {
			return mpFail(who, fmt.Errorf("Send %d: %w", i, err))
		}
		fmt.Printf("ack %d\n", pos.Offset)
	}
	return 0
}

func parseTestDurability(s string) (Durability, error) {
	for _, d := range []Durability{Durable, Buffered, Periodic} {
		if d.String() == s {
			return d, nil
		}
	}
	return 0, fmt.Errorf("durability %q", s)
}

// TestRetentionAgeSealsActiveSegmentOfWriterProcess: the retention check
// seals and removes the expired active segment a writer in another
// process has open, its view of the tail in it; the writer's next appends
// follow the seal to the next offset, in every durability mode. Killed
// then, it leaves a partition the next writer appends to after its
// records, and Verify finds nothing wrong.
func TestRetentionAgeSealsActiveSegmentOfWriterProcess(t *testing.T) {
	slowAlone(t)
	for _, d := range []Durability{Durable, Buffered, Periodic} {
		t.Run(d.String(), func(t *testing.T) {
			dir := t.TempDir()
			l := openTest(t, dir, &Options{Durability: Buffered, RetentionInterval: -1})
			mustCreate(t, l, "t", TopicConfig{Partitions: 1, RetentionAge: time.Hour})
			cmd := mpChild("retention-seal-writer", "RUNNEL_RS_DIR="+dir, "RUNNEL_RS_DURABILITY="+d.String())
			in, stdout := startPiped(t, cmd)
			t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
			lines := mpLines(stdout)
			if s := mpExpectLine(t, lines, patience); s != "ready" {
				t.Fatalf("writer said %q, want ready", s)
			}

			waitWriterIdle(t, dir)
			checker := sealIdleActive(t, dir, rsRecords)
			const more = 3
			for i := range more {
				fmt.Fprintln(in, "append")
				want := "ack " + strconv.Itoa(rsRecords+i)
				if s := mpExpectLine(t, lines, patience); s != want {
					t.Fatalf("writer said %q, want %q", s, want)
				}
			}
			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			cmd.Wait()

			retProduce(t, checker, "t", rsRecords+more, 1, rsSize, nil)
			retCheckFrom(t, checker, "t", rsRecords, rsRecords+more+1, rsSize)
			if rep, err := checker.Verify(context.Background(), "t", nil); err != nil || !rep.OK() {
				t.Errorf("Verify: %v, problems %v", err, rep.Problems)
			}
		})
	}
}

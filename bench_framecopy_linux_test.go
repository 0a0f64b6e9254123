package runnel

import (
	"fmt"
	"testing"
)

// BenchmarkFrameCopy compares the two ways a Buffered writer that keeps
// the writer lock puts a frame into the page cache, by the frame's size:
// a copy through the segment's mapping (commitMap.write) or a pwrite. One
// SendAsync stream of 100-byte records; MaxBatchBytes sets the frames'
// size. mapWriteMax is where the two meet.
//
//	go test -run '^$' -bench FrameCopy -benchtime 2s -count 3 .
func BenchmarkFrameCopy(b *testing.B) {
	for _, size := range []int{1 << 10, 2 << 10, 4 << 10, 64 << 10} {
		for _, via := range []string{"map", "pwrite"} {
			b.Run(fmt.Sprintf("frame=%dKiB/via=%s", size>>10, via), func(b *testing.B) {
				// Restored after the Log closes: cleanups run last in,
				// first out.
				was := mapWriteMax
				b.Cleanup(func() { mapWriteMax = was })
				mapWriteMax = 0
				if via == "map" {
					mapWriteMax = size
				}
				l, p := benchLogWith(b, &Options{Durability: Buffered, Backend: BackendPwrite, MaxBatchBytes: size})
				sendStream(b, p, make([]byte, 100))
				st := l.Stats()
				b.ReportMetric(float64(st.RecordsWritten)/float64(max(st.FramesWritten, 1)), "records/frame")
				b.ReportMetric(float64(st.BytesWritten)/float64(max(st.FramesWritten, 1)), "bytes/frame")
			})
		}
	}
}

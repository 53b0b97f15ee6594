package sfu

import (
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/transport/v5/packetio"
)

// TestPushedQueueReadsAsWritten: a publish stream's queue hands its reader
// the packets written before the reader attached, in order, then reads
// every later packet within the write that brought it, on the writer's
// goroutine; once closed, it reads what is left and ends the reader once.
func TestPushedQueueReadsAsWritten(t *testing.T) {
	var shed shedMeter
	var pushed pushStreams
	q := newMediaQueue(&shed, &pushed)(packetio.RTPBufferPacket, 42).(*mediaQueue)
	if got := pushed.take(7); got != nil {
		t.Fatal("a queue was found for an SSRC nobody sends")
	}
	write := func(seq int) {
		t.Helper()
		if _, err := q.Write([]byte{byte(seq)}); err != nil {
			t.Fatalf("write %d: %v", seq, err)
		}
	}
	for seq := range 3 {
		write(seq)
	}

	var got []int
	buf := make([]byte, 1500)
	readOne := func() bool {
		n, err := q.Read(buf)
		if err != nil {
			return false
		}
		got = append(got, int(buf[n-1]))
		return true
	}
	var ended atomic.Int32
	endedCh := make(chan struct{}, 2)
	end := func() { ended.Add(1); endedCh <- struct{}{} }

	if pushed.take(42) != q {
		t.Fatal("the stream's queue was not kept for its reader")
	}
	q.attach(readOne, end)
	if want := []int{0, 1, 2}; !slices.Equal(got, want) {
		t.Fatalf("attach read %v, want the packets written before, in order: %v", got, want)
	}
	for seq := 3; seq < 100; seq++ {
		write(seq)
		if len(got) != seq+1 || got[seq] != seq || q.Count() != 0 {
			t.Fatalf("after writing %d the reader had %d packets (last %v), %d queued; want each read within its write", seq, len(got), got[len(got)-1], q.Count())
		}
	}
	if n := shed.n.Load(); n != 0 {
		t.Errorf("%d packets shed by a queue that was read as written", n)
	}

	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-endedCh:
	case <-time.After(5 * time.Second):
		t.Fatal("the reader was not ended after the stream closed")
	}
	if _, err := q.Write([]byte{1}); err == nil {
		t.Error("a closed queue took a packet")
	}
	time.Sleep(50 * time.Millisecond)
	if n := ended.Load(); n != 1 {
		t.Errorf("the reader was ended %d times, want once", n)
	}
	if len(got) != 100 {
		t.Errorf("%d packets read, want 100", len(got))
	}
}

// TestPushedQueueEndsOnReadError: a read that fails (pion's track ended)
// ends the reader at once, and later writes are left queued for nobody.
func TestPushedQueueEndsOnReadError(t *testing.T) {
	var shed shedMeter
	q := newMediaQueue(&shed, &pushStreams{})(packetio.RTPBufferPacket, 1).(*mediaQueue)
	t.Cleanup(func() { _ = q.Close() })
	ended := make(chan struct{}, 2)
	reads := 0
	q.attach(func() bool {
		reads++
		_, _ = q.Read(make([]byte, 1500))
		return false
	}, func() { ended <- struct{}{} })
	if _, err := q.Write([]byte{1}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("a failed read did not end the reader")
	}
	if _, err := q.Write([]byte{2}); err != nil {
		t.Fatal(err)
	}
	if reads != 1 || q.Count() != 1 {
		t.Errorf("%d reads, %d queued after the reader ended; want 1 read and the later packet left queued", reads, q.Count())
	}
}

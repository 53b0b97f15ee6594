package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/pion/rtp"
)

// The bare relay is the baseline iopd is compared with: a plain UDP relay on
// one loopback socket that copies every packet a participant sends to every
// other participant of its room. No ICE, DTLS, SRTP, RTCP or rewriting: one
// recvfrom and N-1 sendto per packet, the least any SFU has to do. It runs
// as a child process (this binary with relayChildFlag) so that its CPU time
// is read from /proc the same way as iopd's.
//
// Control datagrams, from a participant's socket:
//
//	"IOPJ" room(4 bytes) layer(1 byte)  join the room, receiving that
//	                                    simulcast layer of each video;
//	                                    the relay answers "IOPA"
//	"IOPL"                              leave
//
// Anything else from a joined address is a packet to fan out: audio to
// everyone else in the room, video to those who receive its layer (read
// from the packet's stamp, as an SFU tells layers apart by SSRC).
const relayChildFlag = "-relay-child"

var (
	relayJoin  = []byte("IOPJ")
	relayAck   = []byte("IOPA")
	relayLeave = []byte("IOPL")
)

// runRelayChild serves the relay on 127.0.0.1 until stdin closes (the
// parent is done or died), printing its address on stdout.
func runRelayChild(stdin io.Reader, stdout io.Writer) error {
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return err
	}
	defer conn.Close()
	fmt.Fprintf(stdout, "relay %s\n", conn.LocalAddr())
	done := make(chan error, 1)
	go func() { done <- relay(conn) }()
	_, _ = io.Copy(io.Discard, stdin)
	_ = conn.Close()
	if err := <-done; err != nil && !errors.Is(err, net.ErrClosed) {
		return err
	}
	return nil
}

// relay reads packets and fans them out until conn closes. One goroutine
// owns the membership, so the hot path takes no lock and allocates nothing.
func relay(conn *net.UDPConn) error {
	rooms := map[uint32][]relayMember{}
	member := map[netip.AddrPort]uint32{}
	buf := make([]byte, 2048)
	for {
		n, from, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return err
		}
		pkt := buf[:n]
		room, joined := member[from]
		switch {
		case n == 9 && bytes.Equal(pkt[:4], relayJoin):
			r := binary.BigEndian.Uint32(pkt[4:])
			if !joined {
				member[from] = r
				rooms[r] = append(rooms[r], relayMember{addr: from, layer: pkt[8]})
			}
			_, _ = conn.WriteToUDPAddrPort(relayAck, from)
		case n == 4 && bytes.Equal(pkt, relayLeave):
			if joined {
				delete(member, from)
				rooms[room] = removeMember(rooms[room], from)
			}
		case joined:
			st, _ := readStamp(pkt)
			video := st.flags&stampVideo != 0
			for _, to := range rooms[room] {
				if to.addr != from && (!video || st.layer == to.layer) {
					_, _ = conn.WriteToUDPAddrPort(pkt, to.addr)
				}
			}
		}
	}
}

// relayMember is one participant of a relay room and the video layer it
// receives.
type relayMember struct {
	addr  netip.AddrPort
	layer byte
}

func removeMember(list []relayMember, a netip.AddrPort) []relayMember {
	out := list[:0]
	for _, x := range list {
		if x.addr != a {
			out = append(out, x)
		}
	}
	return out
}

// relayProcess is a running relay child.
type relayProcess struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	addr  netip.AddrPort
	done  chan struct{}
}

// startRelay starts this binary (exe) as a relay child and waits for its address.
func startRelay(ctx context.Context, exe string) (*relayProcess, error) {
	cmd := exec.Command(exe, relayChildFlag)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	listening := newLineWatch("relay ")
	cmd.Stdout = listening
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start relay: %w", err)
	}
	r := &relayProcess{cmd: cmd, stdin: stdin, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(r.done) }()
	select {
	case l := <-listening.found:
		addr, err := netip.ParseAddrPort(l)
		if err != nil {
			r.stop()
			return nil, fmt.Errorf("relay child said %q, want its address", l)
		}
		r.addr = addr
	case <-r.done:
		r.stop()
		return nil, errors.New("relay child exited on start")
	case <-time.After(10 * time.Second):
		r.stop()
		return nil, errors.New("relay child did not start within 10 s")
	case <-ctx.Done():
		r.stop()
		return nil, ctx.Err()
	}
	return r, nil
}

func (r *relayProcess) pid() int { return r.cmd.Process.Pid }

// stop closes the child's stdin, which ends it, and kills it by its PID if
// it has not exited within two seconds.
func (r *relayProcess) stop() {
	_ = r.stdin.Close()
	select {
	case <-r.done:
	case <-time.After(2 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.done
	}
}

// relayPeer is a participant of the relay: one UDP socket that sends its
// source's packets to the relay and receives everyone else's.
type relayPeer struct {
	conn  *net.UDPConn
	relay netip.AddrPort
	src   *source
	rx    *receiver
	stop  chan struct{}
	wg    sync.WaitGroup
	once  sync.Once
	buf   []byte
}

// joinRelay opens a participant's socket and joins room at the relay, to
// receive layer of every video.
func joinRelay(relayAddr netip.AddrPort, room, idx uint32, tr traffic, layer int, rx *receiver) (*relayPeer, error) {
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	p := &relayPeer{conn: conn, relay: relayAddr, rx: rx, stop: make(chan struct{}), buf: make([]byte, 1600)}
	join := append(binary.BigEndian.AppendUint32(append([]byte(nil), relayJoin...), room), byte(layer))
	ack := make([]byte, 16)
	acked := false
	for try := 0; try < 20 && !acked; try++ {
		if _, err := conn.WriteToUDPAddrPort(join, relayAddr); err != nil {
			conn.Close()
			return nil, fmt.Errorf("join relay: %w", err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		n, _, err := conn.ReadFromUDPAddrPort(ack)
		acked = err == nil && bytes.Equal(ack[:n], relayAck)
	}
	_ = conn.SetReadDeadline(time.Time{})
	if !acked {
		conn.Close()
		return nil, errors.New("the relay did not acknowledge a join within 2 s")
	}
	p.src = newSource(idx, tr, p)
	p.wg.Add(2)
	go func() {
		defer p.wg.Done()
		p.src.run(p.stop)
	}()
	go p.read()
	return p, nil
}

// writeRTP sends one packet to the relay; only the source's goroutine calls it.
func (p *relayPeer) writeRTP(_ bool, _ int, hdr *rtp.Header, payload []byte) error {
	n, err := hdr.MarshalTo(p.buf)
	if err != nil {
		return err
	}
	n += copy(p.buf[n:], payload)
	_, err = p.conn.WriteToUDPAddrPort(p.buf[:n], p.relay)
	return err
}

func (p *relayPeer) read() {
	defer p.wg.Done()
	buf := make([]byte, 2048)
	var cache *rxStream
	var key streamKey
	for {
		n, _, err := p.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		p.rx.packet(buf[:n], time.Now(), &cache, &key)
	}
}

func (p *relayPeer) close() {
	p.once.Do(func() {
		close(p.stop)
		_, _ = p.conn.WriteToUDPAddrPort(relayLeave, p.relay)
		_ = p.conn.Close()
		p.wg.Wait()
	})
}

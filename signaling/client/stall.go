package client

import (
	"net"
	"sync"

	"github.com/pion/transport/v5"
	"github.com/pion/transport/v5/stdnet"
)

// Stall makes a participant stop reading its subscribe PeerConnection's
// socket, as a frozen device or a stalled network does: packets pile up in
// the kernel's buffer and are dropped there, and nothing (no RTCP, no ICE
// consent) goes back. Set it in Options; Stop and Resume switch it.
type Stall struct {
	mu      sync.Mutex
	resumed chan struct{} // closed while reading
}

// NewStall returns a Stall that reads until Stop.
func NewStall() *Stall {
	s := &Stall{resumed: make(chan struct{})}
	close(s.resumed)
	return s
}

// Stop stops reading.
func (s *Stall) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.resumed:
		s.resumed = make(chan struct{})
	default:
	}
}

// Resume reads again.
func (s *Stall) Resume() {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.resumed:
	default:
		close(s.resumed)
	}
}

func (s *Stall) wait(closed <-chan struct{}) bool {
	s.mu.Lock()
	resumed := s.resumed
	s.mu.Unlock()
	select {
	case <-resumed:
		return true
	case <-closed:
		return false
	}
}

// stalledNet is the network of a PeerConnection under a Stall.
type stalledNet struct {
	*stdnet.Net
	stall *Stall
}

func newStalledNet(s *Stall) (transport.Net, error) {
	n, err := stdnet.NewNet()
	if err != nil {
		return nil, err
	}
	return stalledNet{Net: n, stall: s}, nil
}

func (n stalledNet) ListenUDP(network string, laddr *net.UDPAddr) (transport.UDPConn, error) {
	c, err := n.Net.ListenUDP(network, laddr)
	if err != nil {
		return nil, err
	}
	return &stalledConn{UDPConn: c, stall: n.stall, closed: make(chan struct{})}, nil
}

// stalledConn waits for its Stall before each read.
type stalledConn struct {
	transport.UDPConn
	stall  *Stall
	once   sync.Once
	closed chan struct{}
}

func (c *stalledConn) ReadFrom(b []byte) (int, net.Addr, error) {
	if !c.stall.wait(c.closed) {
		return 0, nil, net.ErrClosed
	}
	return c.UDPConn.ReadFrom(b)
}

func (c *stalledConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return c.UDPConn.Close()
}

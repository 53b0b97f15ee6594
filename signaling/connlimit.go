package signaling

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// ConnLimiter is a listener that caps the TCP connections one IP address
// holds open at once (IOP_HTTP_CONNS_PER_ADDR): a connection beyond it is
// answered 429 and closed before any request is read. Connections from a
// trusted proxy are not counted: behind one, every client shares its
// address, and the per-address limits of the websocket (X-Forwarded-For)
// apply instead.
type ConnLimiter struct {
	net.Listener
	perAddr int
	proxies []netip.Prefix

	mu      sync.Mutex
	open    map[netip.Addr]int
	refused atomic.Uint64
}

// LimitConns wraps ln so that no address other than a trusted proxy holds
// more than perAddr connections.
func LimitConns(ln net.Listener, perAddr int, proxies []netip.Prefix) *ConnLimiter {
	return &ConnLimiter{Listener: ln, perAddr: perAddr, proxies: proxies, open: map[netip.Addr]int{}}
}

// Refused returns how many connections the cap has refused.
func (l *ConnLimiter) Refused() uint64 { return l.refused.Load() }

// tooMany is the whole answer to a connection over the cap.
const tooMany = "HTTP/1.1 429 Too Many Requests\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: 39\r\n\r\ntoo many connections from your address\n"

// Accept returns the next connection within its address's cap.
func (l *ConnLimiter) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		addr, ok := peerAddr(c)
		if !ok || l.trusted(addr) {
			return c, nil
		}
		l.mu.Lock()
		over := l.open[addr] >= l.perAddr
		if !over {
			l.open[addr]++
		}
		l.mu.Unlock()
		if !over {
			return &countedConn{Conn: c, release: func() { l.release(addr) }}, nil
		}
		l.refused.Add(1)
		go func() {
			_ = c.SetWriteDeadline(time.Now().Add(time.Second))
			_, _ = c.Write([]byte(tooMany))
			_ = c.Close()
		}()
	}
}

func (l *ConnLimiter) release(addr netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[addr]--; l.open[addr] <= 0 {
		delete(l.open, addr)
	}
}

func (l *ConnLimiter) trusted(a netip.Addr) bool {
	for _, p := range l.proxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// peerAddr is the IP address at the other end of c.
func peerAddr(c net.Conn) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(c.RemoteAddr().String())
	if err != nil {
		return netip.Addr{}, false
	}
	return ap.Addr().Unmap(), true
}

// countedConn gives its place back when it closes, once.
type countedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

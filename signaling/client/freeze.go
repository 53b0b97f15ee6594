package client

import (
	"sync/atomic"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
)

// freezeFactory makes, for each PeerConnection, an interceptor that drops
// the RTCP the participant would send once frozen is set (Freeze): a
// frozen process sends no receiver reports either. Registered before
// pion's default interceptors, it wraps the writer they are given.
type freezeFactory struct{ frozen *atomic.Bool }

func (f freezeFactory) NewInterceptor(string) (interceptor.Interceptor, error) {
	return &freezeGate{frozen: f.frozen}, nil
}

type freezeGate struct {
	interceptor.NoOp
	frozen *atomic.Bool
}

// BindRTCPWriter drops what is written while frozen.
func (g *freezeGate) BindRTCPWriter(w interceptor.RTCPWriter) interceptor.RTCPWriter {
	return interceptor.RTCPWriterFunc(func(pkts []rtcp.Packet, a interceptor.Attributes) (int, error) {
		if g.frozen.Load() {
			return 0, nil
		}
		return w.Write(pkts, a)
	})
}

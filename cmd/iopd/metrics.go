package main

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"iop/sfu"
)

// metricsHandler serves /metrics: what this node carries now, read from its
// parts when scraped (nothing is counted on the media path for it).
func (n *node) metricsHandler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	gauge := func(name, help string, f func() float64) {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "iop", Name: name, Help: help}, f))
	}
	gauge("rooms", "Media rooms open on this node.", func() float64 { return float64(n.sfu.Stats().Rooms) })
	gauge("participants", "Admitted participants with media on this node.", func() float64 { return float64(n.sfu.Stats().Participants) })
	gauge("peer_connections", "Open PeerConnections.", func() float64 { return float64(n.sfu.Stats().PeerConnections) })
	gauge("published_tracks", "Tracks being published to this node.", func() float64 { return float64(n.sfu.Stats().UpTracks) })
	gauge("sockets", "Open signaling websockets (waiting, admitted or not yet joined).", func() float64 { return float64(n.sig.Sessions()) })
	for _, t := range sfu.Transports {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "iop", Name: "participants_by_transport",
			Help:        "Participants whose media is connected, by how it travels: udp, tcp (ICE over TCP) or relay (TURN).",
			ConstLabels: prometheus.Labels{"transport": string(t)},
		}, func() float64 { return float64(n.sfu.Stats().ByTransport[t]) }))
	}
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Namespace: "iop", Name: "rtp_packets_received_total", Help: "RTP packets received from publishers.",
	}, func() float64 { return float64(n.sfu.Stats().PacketsIn) }))
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Namespace: "iop", Name: "rtp_packets_shed_total",
		Help: "Incoming media packets dropped because this node could not forward them in time (overload).",
	}, func() float64 { return float64(n.sfu.Stats().PacketsShed) }))
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Namespace: "iop", Name: "udp_send_batches_total",
		Help: "sendmmsg calls that sent the copies of forwarded packets (IOP_UDP_BATCH=on).",
	}, func() float64 { return float64(n.sfu.Stats().SendBatches) }))
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Namespace: "iop", Name: "udp_batched_datagrams_total",
		Help: "Datagrams those sendmmsg calls carried; divided by iop_udp_send_batches_total, the datagrams per system call.",
	}, func() float64 { return float64(n.sfu.Stats().BatchedDatagrams) }))
	gauge("video_waiting_keyframe", "Subscribers' video tracks that wait for a keyframe to start or to switch layer (a tile still black, or still on the old layer).",
		func() float64 { return float64(n.sfu.Stats().KeyframeWaits.Waiting) })
	gauge("video_keyframe_wait_longest_seconds", "How long the longest of those has waited.",
		func() float64 { return n.sfu.Stats().KeyframeWaits.Longest.Seconds() })
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Namespace: "iop", Name: "keyframe_requests_total",
		Help: "Keyframe requests (PLI) sent to publishers, one per track and request.",
	}, func() float64 { return float64(n.sfu.Stats().KeyframeRequests) }))
	gauge("attendance_redis_down", "1 while the attendance recorder cannot reach Redis (events go to the spool); back to 0 at its next successful write or heartbeat.", func() float64 {
		if n.recorder.Stats().Down {
			return 1
		}
		return 0
	})
	gauge("attendance_spooled_events", "Attendance events waiting in the spool for Redis.", func() float64 { return float64(n.recorder.Stats().Spooled) })
	for limit, f := range map[string]func() uint64{
		"sockets_per_person":     func() uint64 { return n.sig.Limits().Replaced },
		"unjoined_per_addr":      func() uint64 { return n.sig.Limits().RefusedUnjoined },
		"joins_per_addr":         func() uint64 { return n.sig.Limits().RefusedJoinRate },
		"participants_per_node":  func() uint64 { return n.sig.Limits().RefusedNodeFull },
		"tracks_per_participant": func() uint64 { return n.sfu.Stats().Refused.Tracks },
		"candidates_per_pc":      func() uint64 { return n.sfu.Stats().Refused.Candidates },
		"renegotiations_per_min": func() uint64 { return n.sfu.Stats().Refused.Offers },
		"streams_per_pc":         func() uint64 { return n.sfu.Stats().Refused.Streams },
		"http_conns_per_addr":    func() uint64 { return n.conns.Refused() },
	} {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: "iop", Name: "limit_refusals_total",
			Help: "Refusals by a limit: sockets_per_person (an older socket replaced), unjoined_per_addr (too_many_connections), joins_per_addr (too_many_joins), " +
				"participants_per_node (node_full), tracks_per_participant (too_many_tracks), candidates_per_pc (too_many_candidates), " +
				"renegotiations_per_min (too_many_renegotiations), streams_per_pc (a publisher dropped for opening too many media streams), " +
				"http_conns_per_addr (HTTP 429 at the listener).",
			ConstLabels: prometheus.Labels{"limit": limit},
		}, func() float64 { return float64(f()) }))
	}
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

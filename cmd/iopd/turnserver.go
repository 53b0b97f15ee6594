package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"strconv"

	"iop/sfu/turn"
	"iop/signaling"
)

// startTURN sets up TURN for the signaling server: credentials for the
// servers of IOP_TURN_URLS and, with IOP_TURN_PORT, an embedded TURN server
// whose URLs (at this node's public host) are handed out too.
func (n *node) startTURN(sigCfg *signaling.Config, publicIPs []string) error {
	cfg := n.cfg
	urls := splitList(cfg.TURNURLs)
	secret := cfg.TURNSecret
	if cfg.TURNPort != "" {
		if secret == "" {
			b := make([]byte, 32)
			_, _ = rand.Read(b)
			secret = hex.EncodeToString(b) // only this process checks it
		}
		relay, peers, err := n.mediaAddrs(publicIPs)
		if err != nil {
			return err
		}
		u, err := url.Parse(n.url)
		if err != nil {
			return fmt.Errorf("IOP_PUBLIC_URL: %w", err)
		}
		n.turn, err = turn.Listen(turn.ServerConfig{
			Addr:    net.JoinHostPort(cfg.UDPHost, cfg.TURNPort),
			RelayIP: relay,
			Peers:   peers,
			Secret:  []byte(secret),
			Realm:   u.Hostname(),
		})
		if err != nil {
			return err
		}
		at := net.JoinHostPort(u.Hostname(), strconv.Itoa(n.turn.Port()))
		urls = append(urls, "turn:"+at+"?transport=udp", "turn:"+at+"?transport=tcp")
		n.log.Info("embedded TURN server", "port", n.turn.Port())
	}
	if len(urls) == 0 {
		return nil
	}
	iss, err := turn.NewIssuer(urls, secret)
	if err != nil {
		return err
	}
	sigCfg.TURN = iss
	sigCfg.TURNSession = cfg.TURNTTL
	return nil
}

// mediaAddrs returns the address the embedded TURN server's relayed
// traffic comes from (as iopd sees it) and the addresses it may relay to:
// iopd's media addresses, announced and local.
func (n *node) mediaAddrs(publicIPs []string) (relay net.IP, peers []net.IP, err error) {
	for _, s := range publicIPs {
		if ip := net.ParseIP(s); ip != nil {
			peers = append(peers, ip)
		}
	}
	for _, a := range n.sfu.LocalAddrs() {
		if ua, ok := a.(*net.UDPAddr); ok && !ua.IP.IsUnspecified() {
			peers = append(peers, ua.IP)
		}
	}
	if len(peers) == 0 {
		// Every interface: the host's own addresses.
		addrs, err := net.InterfaceAddrs()
		if err != nil {
			return nil, nil, fmt.Errorf("embedded TURN server: %w", err)
		}
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil {
				peers = append(peers, ipn.IP)
			}
		}
	}
	if len(peers) == 0 {
		return nil, nil, fmt.Errorf("embedded TURN server: no media address to relay to")
	}
	// Prefer an address that is not loopback, as the relay's own.
	relay = peers[0]
	for _, ip := range peers {
		if !ip.IsLoopback() {
			relay = ip
			break
		}
	}
	return relay, peers, nil
}

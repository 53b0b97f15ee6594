package main

import (
	"context"
	"fmt"
	"net"
	"time"
)

// resolvePublicIPs turns IOP_PUBLIC_IP's entries into IPv4 addresses: an
// address stays, a host name (a clinic's IOP_DOMAIN) is looked up once at
// start.
func resolvePublicIPs(ctx context.Context, entries []string) ([]string, error) {
	var out []string
	for _, e := range entries {
		if ip := net.ParseIP(e); ip != nil {
			out = append(out, e)
			continue
		}
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		ips, err := net.DefaultResolver.LookupIP(ctx, "ip4", e)
		cancel()
		if err != nil || len(ips) == 0 {
			return nil, fmt.Errorf("IOP_PUBLIC_IP: look up %q: %w", e, err)
		}
		out = append(out, ips[0].String())
	}
	return out, nil
}

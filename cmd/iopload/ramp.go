package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
)

// W2's targets: a step is sustained while receivers lose less than this
// share of packets and the one-way latency's p99 stays under this.
const (
	rampMaxLossPercent = 0.5
	rampMaxP99ms       = 20.0
)

// RampReport is W2: one run per number of groups, adding a group each
// step until a target fails or -max-rooms is reached.
type RampReport struct {
	Workload string    `json:"workload"`
	Command  string    `json:"command"`
	Steps    []*Report `json:"steps"`
	// Sustained is the most groups that met the targets; GroupsPerCore
	// divides it by the CPU iopd used carrying them (cores busy), so it
	// holds on a machine shared with the load generator.
	Sustained     int     `json:"sustained_groups"`
	IOPDCores     float64 `json:"iopd_cpu_s_per_s_at_sustained"`
	GroupsPerCore float64 `json:"groups_per_core"`
	StoppedBy     string  `json:"stopped_by"`
}

// ramp runs the configured shape with c.Rooms groups, then one more group
// each step, until iopd misses a target or c.MaxRooms is reached.
func ramp(ctx context.Context, c *config) (*RampReport, error) {
	rr := &RampReport{Workload: c.Workload}
	if rr.Workload == "" {
		rr.Workload = "ramp"
	}
	for n := c.Rooms; n <= c.MaxRooms; n++ {
		step := *c
		step.Rooms = n
		c.logf("ramp: %d group(s) of %d", n, c.PerRoom)
		rep, err := run(ctx, &step)
		if rep != nil {
			rr.Steps = append(rr.Steps, rep)
		}
		if err != nil {
			return rr, err
		}
		if why := rampMiss(rep); why != "" {
			rr.StoppedBy = fmt.Sprintf("%d groups: %s", n, why)
			return rr, nil
		}
		rr.Sustained = n
		rr.IOPDCores = rep.IOPD.CPUSecondsPerSecond
		if rr.IOPDCores > 0 {
			rr.GroupsPerCore = float64(n) / rr.IOPDCores
		}
		if ctx.Err() != nil {
			return rr, ctx.Err()
		}
	}
	rr.StoppedBy = fmt.Sprintf("-max-rooms %d reached", c.MaxRooms)
	return rr, nil
}

// rampMiss says which target a step missed, or "".
func rampMiss(r *Report) string {
	p := r.IOPD
	switch {
	case p == nil:
		return "nothing measured"
	case r.Joins.Failed > 0:
		return fmt.Sprintf("%d joins failed", r.Joins.Failed)
	case p.StreamsReceiving < p.Streams:
		return fmt.Sprintf("only %d of %d streams delivered", p.StreamsReceiving, p.Streams)
	case r.FirstFrame != nil && r.FirstFrame.Shown < r.FirstFrame.Streams:
		return fmt.Sprintf("only %d of %d videos showed a frame", r.FirstFrame.Shown, r.FirstFrame.Streams)
	case p.LossPercent >= rampMaxLossPercent:
		return fmt.Sprintf("loss %.2f%% (target under %.1f%%)", p.LossPercent, rampMaxLossPercent)
	case p.Latency.P99 >= rampMaxP99ms:
		return fmt.Sprintf("latency p99 %.1f ms (target under %.0f ms)", p.Latency.P99, rampMaxP99ms)
	}
	return ""
}

func (rr *RampReport) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rr)
}

// writeText prints one line per step, the summary, then each step's report.
func (rr *RampReport) writeText(w io.Writer) {
	fmt.Fprintf(w, "iopload %s: groups added one at a time until loss reaches %.1f%% or latency p99 %.0f ms\n", rr.Workload, rampMaxLossPercent, rampMaxP99ms)
	fmt.Fprintf(w, "command: %s\n\n", rr.Command)
	fmt.Fprintf(w, "  %-7s %-10s %-8s %-10s %-12s %-12s %-7s %-15s %-20s %s\n", "groups", "fwd pkt/s", "Mbps", "iopd s/s", "iopd us/pkt", "relay us/pkt", "ratio", "loss iopd/relay", "p99 ms iopd/relay", "machine busy")
	for _, s := range rr.Steps {
		i, rl := s.IOPD, s.Relay
		if i == nil {
			continue
		}
		if rl == nil {
			rl = &PathReport{}
		}
		fmt.Fprintf(w, "  %-7d %-10.0f %-8.1f %-10.2f %-12.2f %-12.2f %-7s %-15s %-20s %.2f\n",
			s.Config.Rooms, i.ForwardedPacketsPerSec, i.ForwardedMbps, i.CPUSecondsPerSecond, i.CPUMicrosPerPacket, rl.CPUMicrosPerPacket,
			fmt.Sprintf("%.2fx", s.CPUPerPacketRatio), fmt.Sprintf("%.2f/%.2f%%", i.LossPercent, rl.LossPercent),
			fmt.Sprintf("%.1f/%.1f", i.Latency.P99, rl.Latency.P99), i.MachineBusyCores)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "sustained: %d group(s); stopped at %s\n", rr.Sustained, rr.StoppedBy)
	if rr.Sustained > 0 {
		fmt.Fprintf(w, "groups per core: %.2f (%d groups on %.2f cores of iopd CPU)\n", rr.GroupsPerCore, rr.Sustained, rr.IOPDCores)
	}
	for _, s := range rr.Steps {
		fmt.Fprintf(w, "\n--- %d group(s) ---\n", s.Config.Rooms)
		s.writeText(w)
	}
}

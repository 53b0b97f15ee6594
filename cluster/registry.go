package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"
)

// Node is one iopd node as other nodes see it.
type Node struct {
	ID           string    `json:"id"`
	URL          string    `json:"url"`
	Participants int       `json:"participants"`
	Rooms        int       `json:"rooms"`
	Seen         time.Time `json:"seen"`
}

// nodeKey is the registry entry of one node; it expires unless refreshed.
func nodeKey(id string) string { return "iop:node:" + id }

// nodeIndex is the set of node ids that have registered.
const nodeIndex = "iop:nodes"

// RegisterNode writes n to the registry with a time to live: a node that
// stops refreshing disappears from Nodes after ttl.
func (s *Store) RegisterNode(ctx context.Context, n Node, ttl time.Duration) error {
	b, err := json.Marshal(n)
	if err != nil {
		return fmt.Errorf("encode node: %w", err)
	}
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, nodeKey(n.ID), b, ttl)
		p.SAdd(ctx, nodeIndex, n.ID)
		return nil
	})
	if err != nil {
		return fmt.Errorf("register node: %w", err)
	}
	return nil
}

// UnregisterNode removes n from the registry (graceful shutdown).
func (s *Store) UnregisterNode(ctx context.Context, id string) error {
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, nodeKey(id))
		p.SRem(ctx, nodeIndex, id)
		return nil
	})
	if err != nil {
		return fmt.Errorf("unregister node: %w", err)
	}
	return nil
}

// Nodes returns the live nodes, pruning ids whose entry has expired.
func (s *Store) Nodes(ctx context.Context) ([]Node, error) {
	ids, err := s.rdb.SMembers(ctx, nodeIndex).Result()
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	var out []Node
	for _, id := range ids {
		b, err := s.rdb.Get(ctx, nodeKey(id)).Bytes()
		if err == redis.Nil {
			s.rdb.SRem(ctx, nodeIndex, id)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read node: %w", err)
		}
		var n Node
		if err := json.Unmarshal(b, &n); err != nil {
			return nil, fmt.Errorf("decode node %s: %w", id, err)
		}
		out = append(out, n)
	}
	return out, nil
}

// Heartbeat keeps one node's entry in the registry fresh while the node
// runs, with its current load.
type Heartbeat struct {
	store *Store
	node  Node
	load  func() (participants, rooms int)
	log   *slog.Logger
	stop  chan struct{}
	done  chan struct{}
}

// Registry timing: a node refreshes its entry every BeatEvery; an entry
// outlives a node that stopped by BeatTTL.
const (
	BeatEvery = 10 * time.Second
	BeatTTL   = 30 * time.Second
)

// StartHeartbeat registers node id at url once (an error means Redis did not
// take it) and then refreshes the entry every BeatEvery with the load that
// load reports, until Stop.
func (s *Store) StartHeartbeat(ctx context.Context, id, url string, load func() (participants, rooms int), log *slog.Logger) (*Heartbeat, error) {
	h := &Heartbeat{store: s, node: Node{ID: id, URL: url}, load: load, log: log, stop: make(chan struct{}), done: make(chan struct{})}
	if err := h.beat(ctx); err != nil {
		return nil, err
	}
	go h.loop()
	return h, nil
}

// beat refreshes this node's entry in the registry.
func (h *Heartbeat) beat(ctx context.Context) error {
	n := h.node
	n.Participants, n.Rooms = h.load()
	n.Seen = time.Now().UTC()
	return h.store.RegisterNode(ctx, n, BeatTTL)
}

func (h *Heartbeat) loop() {
	defer close(h.done)
	t := time.NewTicker(BeatEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if err := h.beat(ctx); err != nil {
				h.log.Warn("node heartbeat failed", "err", err)
			}
			cancel()
		case <-h.stop:
			return
		}
	}
}

// Stop ends the heartbeat and takes the node out of the registry (a
// graceful shutdown; a node that dies drops out after BeatTTL).
func (h *Heartbeat) Stop(ctx context.Context) error {
	close(h.stop)
	<-h.done
	return h.store.UnregisterNode(ctx, h.node.ID)
}

package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"iop/cluster"
	"iop/rooms"
	"iop/rooms/attendance"
	"iop/rooms/audit"
	"iop/rooms/schedule"
	"iop/rooms/store"
	"iop/rooms/telehealth"
	"iop/sfu"
	"iop/sfu/turn"
	"iop/signaling"
	"iop/signaling/token"
	"iop/web"
)

// demoRoom is the group room dev mode opens and prints links for, in the
// program demoProgram.
const (
	demoRoom    = "demo"
	demoProgram = "demo"
)

// node is one running iopd: HTTP (web client, signaling, health) on one
// port, media on one UDP port, shared state in Redis.
type node struct {
	cfg        *config
	log        *slog.Logger
	store      *store.Store
	sfu        *sfu.SFU
	rooms      *rooms.Manager
	seats      *cluster.Seats
	beat       *cluster.Heartbeat
	sig        *signaling.Server
	minter     *token.Minter
	verifier   *token.Verifier
	attendance *attendance.Store
	recorder   *attendance.Recorder
	audit      *audit.Recorder
	auditLog   *audit.Log
	schedule   *schedule.Store
	telehealth *telehealth.Store
	unwatch    func()
	turn       *turn.Server // the embedded TURN server, if any
	http       *http.Server
	ln         net.Listener
	conns      *signaling.ConnLimiter // ln, capped per address
	url        string

	stopTrim chan struct{}
	trimDone chan struct{}
	ready    bool
	mu       sync.Mutex
}

// startNode brings up every part and starts serving; it returns once
// /healthz answers.
func startNode(ctx context.Context, cfg *config, log *slog.Logger) (n *node, err error) {
	n = &node{cfg: cfg, log: log, stopTrim: make(chan struct{}), trimDone: make(chan struct{})}
	started := n // "return nil, err" clears n before the deferred cleanup runs
	defer func() {
		if err != nil {
			started.closeParts()
		}
	}()

	if n.store, err = store.Open(ctx, cfg.RedisURL); err != nil {
		return nil, err
	}
	if n.store.Embedded() {
		log.Warn("no IOP_REDIS_URL: using the embedded in-process Redis; attendance and state will NOT survive a restart")
	} else {
		log.Info("using Redis", "redis", redactURL(cfg.RedisURL))
	}

	tcfg, err := tokenConfig(cfg, log)
	if err != nil {
		return nil, err
	}
	if n.verifier, err = token.NewVerifier(tcfg); err != nil {
		return nil, err
	}
	n.minter = token.NewMinter(tcfg)

	scfg := sfu.DefaultConfig()
	scfg.UDPAddr = net.JoinHostPort(cfg.UDPHost, strconv.Itoa(cfg.UDPPort))
	if port, on, _ := cfg.tcpPort(); on {
		scfg.TCPAddr = net.JoinHostPort(cfg.UDPHost, strconv.Itoa(port))
	}
	if scfg.PublicIPs, err = resolvePublicIPs(ctx, splitList(cfg.PublicIP)); err != nil {
		return nil, err
	}
	scfg.IncludeLoopback = cfg.dev() || isLoopbackAddr(cfg.HTTPAddr) || isLoopbackAddr(cfg.UDPHost)
	scfg.Logger = log
	scfg.MaxTracksPerParticipant = cfg.TracksPerPerson
	scfg.MaxCandidatesPerPC = cfg.CandidatesPerPC
	scfg.MaxOffersPerMinute = cfg.OffersPerMinute
	scfg.NoUDPBatch = cfg.UDPBatch == "off"
	if n.sfu, err = sfu.New(scfg); err != nil {
		return nil, err
	}

	if cfg.NodeID == "" {
		cfg.NodeID = randomHex(6)
	}
	if err := n.startAttendance(cfg, log); err != nil {
		return nil, err
	}
	policies := rooms.DefaultPolicies()
	if err := policies.ParseCaps(cfg.RoomCaps); err != nil {
		return nil, err
	}
	n.auditLog = audit.New(n.store.Redis, audit.Options{Key: cfg.auditKey, Retention: cfg.auditRetention})
	n.audit = audit.NewRecorder(n.auditLog, log)
	n.rooms = rooms.NewManager(policies, n.recorder, n.audit)
	if cfg.dev() {
		n.rooms.Open(rooms.Ref{Program: demoProgram, ID: demoRoom}, rooms.KindGroup, "Demo group", true)
		if err := seedExample(ctx, n.schedule, n.attendance); err != nil {
			return nil, fmt.Errorf("load the example program: %w", err)
		}
	}
	sigCfg := signaling.DefaultConfig()
	sigCfg.Verifier = n.verifier
	sigCfg.Store = n.store
	sigCfg.Leeway = cfg.JWTLeeway
	sigCfg.Minter = n.minter
	sigCfg.Attendance = n.attendance
	sigCfg.Audit = n.audit
	sigCfg.Schedule = n.schedule
	sigCfg.Telehealth = n.telehealth
	sigCfg.Rooms = n.rooms
	sigCfg.SFU = n.sfu
	sigCfg.Logger = log
	sigCfg.Origins = splitList(cfg.Origins)
	sigCfg.SocketsPerPerson = cfg.SocketsPerPerson
	sigCfg.UnjoinedPerAddr = cfg.UnjoinedPerAddr
	sigCfg.JoinRate = cfg.JoinRate
	sigCfg.JoinBurst = cfg.JoinBurst
	sigCfg.PingInterval, sigCfg.IdleTimeout = cfg.pingInterval, cfg.idleTimeout
	n.rooms.SetPingInterval(cfg.pingInterval) // zero: signaling's default, which rooms.SilentAfter fits
	sigCfg.MaxParticipants = cfg.MaxParticipants
	sigCfg.TrustedProxies, _ = signaling.ParseProxies(cfg.Proxies) // checked by parseConfig

	if n.ln, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.HTTPAddr, err)
	}
	n.url = cfg.PublicURL
	if n.url == "" {
		n.url = "http://" + displayAddr(n.ln.Addr().String())
	}
	cl := cluster.NewStore(n.store.Redis)
	load := func() (int, int) { st := n.sfu.Stats(); return st.Participants, st.Rooms }
	if n.beat, err = cl.StartHeartbeat(ctx, cfg.NodeID, n.url, load, log); err != nil {
		return nil, err
	}
	go n.trimLoop()
	n.seats = cluster.NewSeats(cl, cfg.NodeID, n.url, cluster.DefaultLeaseTTL, log)
	sigCfg.Seats = n.seats
	sigCfg.PublicURL = n.url
	if err := n.startTURN(&sigCfg, scfg.PublicIPs); err != nil {
		return nil, err
	}
	n.sig = signaling.New(sigCfg)
	n.seats.WhenLost(n.sig.MoveRoom)
	// One room at a time: a person who joins a room on another node is
	// taken out of this node's rooms.
	if err := n.seats.WhenMoved(func(program, sub string, keep rooms.Ref, at time.Time) {
		n.rooms.MoveOut(program, sub, keep, at)
	}); err != nil {
		return nil, err
	}
	if err := n.watchBlocks(ctx); err != nil {
		return nil, err
	}

	// Every HTTP connection is bounded: a stranger cannot hold one open by
	// sending slowly, reading slowly or idling (websockets clear these
	// deadlines when they upgrade and keep their own, docs/protocol.md).
	n.http = &http.Server{
		Handler:           n.routes(),
		ReadHeaderTimeout: min(10*time.Second, cfg.HTTPReadTimeout),
		ReadTimeout:       cfg.HTTPReadTimeout,
		WriteTimeout:      cfg.HTTPWriteTimeout,
		IdleTimeout:       cfg.HTTPIdleTimeout,
		MaxHeaderBytes:    cfg.HTTPMaxHeader,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	n.conns = signaling.LimitConns(n.ln, cfg.HTTPConnsPerAddr, sigCfg.TrustedProxies)
	go func() { _ = n.http.Serve(n.conns) }()
	n.mu.Lock()
	n.ready = true
	n.mu.Unlock()
	log.Info("iopd ready", "url", n.url, "media_udp", fmt.Sprint(n.sfu.LocalAddrs()), "media_tcp", fmt.Sprint(n.sfu.TCPAddr()), "node", cfg.NodeID)
	return n, nil
}

func (n *node) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /v1/signal", n.sig)
	mux.Handle("/v1/", n.sig.API())
	mux.Handle("GET /metrics", n.metricsHandler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		n.mu.Lock()
		ready := n.ready
		n.mu.Unlock()
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if !ready {
			http.Error(w, "draining", http.StatusServiceUnavailable)
			return
		}
		if err := n.store.Ping(ctx); err != nil {
			http.Error(w, "redis unreachable", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	mux.Handle("/", web.Handler())
	return mux
}

// auditTrimEvery is how often a node applies the audit trail's retention.
const auditTrimEvery = 24 * time.Hour

// trimLoop applies the audit trail's retention every auditTrimEvery.
func (n *node) trimLoop() {
	defer close(n.trimDone)
	trim := time.NewTicker(auditTrimEvery)
	defer trim.Stop()
	for {
		select {
		case <-trim.C:
			n.trimAudit()
		case <-n.stopTrim:
			return
		}
	}
}

// trimAudit removes audit entries older than the retention from every
// program's trail (each trim verifies the chain first and leaves an entry
// of its own; a broken chain is left as it is, for the investigation).
func (n *node) trimAudit() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	programs, err := n.auditLog.Programs(ctx)
	if err != nil {
		n.log.Warn("audit retention", "err", err)
		return
	}
	for _, p := range programs {
		if removed, err := n.auditLog.Trim(ctx, p); err != nil {
			n.log.Error("audit retention: trail not trimmed", "program", p, "err", err)
		} else if removed > 0 {
			n.log.Info("audit retention: entries removed", "program", p, "removed", removed)
		}
	}
}

// startAttendance opens the attendance store and the recorder that turns
// this node's room events into attendance, spooling to IOP_DATA_DIR while
// Redis is away.
func (n *node) startAttendance(cfg *config, log *slog.Logger) error {
	dir := cfg.DataDir
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "iopd-"+cfg.NodeID)
		if !cfg.dev() {
			log.Warn("no IOP_DATA_DIR: the attendance spool is in a temporary directory; set IOP_DATA_DIR to a disk that survives restarts", "dir", dir)
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("IOP_DATA_DIR: %w", err)
	}
	n.schedule = schedule.NewStore(n.store.Redis)
	n.telehealth = telehealth.New(n.store.Redis, n.schedule)
	n.attendance = attendance.New(n.store.Redis, schedule.AttendanceOptions(n.schedule, attendance.Options{
		Zone: cfg.zone, Key: cfg.attendanceKey, OldKeys: cfg.attendanceOldKeys,
	}))
	var err error
	n.recorder, err = attendance.NewRecorder(n.attendance, attendance.RecorderOptions{
		Node:  cfg.NodeID,
		Spool: filepath.Join(dir, "attendance.spool"),
		Log:   log,
	})
	if err != nil {
		return fmt.Errorf("attendance: %w", err)
	}
	return nil
}

// tokenConfig builds the key configuration: HS256 with IOP_JWT_SECRET, or
// EdDSA/ES256 public keys from IOP_JWT_KEYS (and IOP_JWT_PRIVATE_KEY to sign
// invitations); in dev mode a secret made for this run.
func tokenConfig(cfg *config, log *slog.Logger) (token.Config, error) {
	tcfg := token.Config{Audience: cfg.JWTAudience, Issuer: cfg.JWTIssuer, Leeway: cfg.JWTLeeway, MaxTTL: cfg.JWTMaxTTL}
	switch {
	case cfg.JWTKeys != "":
		tcfg.KeysFile = cfg.JWTKeys
	case cfg.JWTSecret != "":
		tcfg.Secret = []byte(cfg.JWTSecret)
	default:
		tcfg.Secret = make([]byte, 32)
		_, _ = rand.Read(tcfg.Secret)
		log.Warn("dev mode: no IOP_JWT_SECRET or IOP_JWT_KEYS, generated a signing key for this run only")
	}
	if cfg.JWTPrivateKey != "" {
		priv, err := token.LoadPrivateKey(cfg.JWTPrivateKey)
		if err != nil {
			return tcfg, err
		}
		tcfg.PrivateKey = priv
	} else if cfg.JWTKeys != "" {
		log.Warn("IOP_JWT_KEYS without IOP_JWT_PRIVATE_KEY: family invitations cannot be signed and are refused")
	}
	return tcfg, nil
}

// watchBlocks ends the live sessions of people blocked program-wide, on
// whichever node blocked them.
func (n *node) watchBlocks(ctx context.Context) error {
	events, stop, err := n.store.SubscribeBlocks(ctx)
	if err != nil {
		return err
	}
	n.unwatch = stop
	go func() {
		for e := range events {
			if e.Blocked {
				if k := n.sig.Kick(e.Program, e.Sub, "Your access to this program has been paused. Please contact your program."); k > 0 {
					n.log.Info("blocked person disconnected", "sessions", k)
				}
			}
		}
	}()
	return nil
}

// ReloadKeys re-reads IOP_JWT_KEYS (SIGHUP), for key rotation.
func (n *node) ReloadKeys() {
	if n.cfg.JWTKeys == "" {
		return
	}
	if err := n.verifier.Reload(); err != nil {
		n.log.Error("reloading IOP_JWT_KEYS; keeping the old keys", "err", err)
		return
	}
	n.log.Info("reloaded IOP_JWT_KEYS", "kids", n.verifier.KeyIDs())
}

// link returns a join link for a person in the demo room.
func (n *node) link(sub, name string, role rooms.Role, ttl time.Duration) (string, error) {
	tok, err := n.minter.Mint(tokenClaims(sub, name, role, demoRoom), ttl)
	if err != nil {
		return "", err
	}
	return n.url + "/join#token=" + tok, nil
}

// Close drains: no new sockets, every participant leaves cleanly, the node
// leaves the registry, then everything stops.
func (n *node) Close(ctx context.Context) error {
	n.mu.Lock()
	n.ready = false
	n.mu.Unlock()
	n.sig.Close()
	err := n.http.Shutdown(ctx)
	n.seats.Close()
	n.unwatch()
	n.audit.Close()
	if rerr := n.recorder.Close(); rerr != nil {
		n.log.Error("closing attendance: events stay in the spool for the next start", "err", rerr)
	}
	close(n.stopTrim)
	<-n.trimDone
	if uerr := n.beat.Stop(ctx); uerr != nil {
		n.log.Warn("leaving the node registry", "err", uerr)
	}
	n.closeParts()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

func (n *node) closeParts() {
	if n.audit != nil {
		n.audit.Close()
	}
	if n.ln != nil {
		_ = n.ln.Close()
	}
	if n.turn != nil {
		_ = n.turn.Close()
	}
	if n.sfu != nil {
		_ = n.sfu.Close()
	}
	if n.store != nil {
		n.store.Close()
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// displayAddr turns a listen address into one a browser can open.
func displayAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}

func isLoopbackAddr(addr string) bool {
	host := addr
	if h, _, err := net.SplitHostPort(addr); err == nil {
		host = h
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// redactURL drops the password from a Redis URL before it is logged.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable)"
	}
	return u.Redacted()
}

// tokenClaims are the claims of a join token for one person and room.
func tokenClaims(sub, name string, role rooms.Role, room string) token.Claims {
	c := token.Claims{Name: name, Role: role, Room: room, Program: demoProgram}
	c.Subject = sub
	return c
}

// loadcli: a grpc-go load client for .ci/grpcgo.sh (raw bytes, no protoc).
// .ci/grpcgo.sh builds it offline in GOPATH mode against Debian's
// golang-google-grpc-dev (grpc-go 1.33), as ../shared/peers/grpc-go/build.sh
// builds the stock peers.
//
// One ClientConn whose resolver (grpc's `manual` resolver) lists two server
// addresses, A and B, under grpc's pick_first (the default) or round_robin.
// Workers call the unary /echo.Echo/Say in a loop: the first -sleepers of them
// send "sleep:<ms>ms" (so calls are in flight at any moment), the others short
// messages as fast as they can. Everything else is grpc-go's default
// behaviour: fail-fast calls, transparent retry of streams the server never
// processed. The application adds at most -retries retries of a call that
// failed with UNAVAILABLE, and of nothing else.
//
// Driven by signals:
//
//	SIGUSR1  waits (up to 3 s) until a sleep call is on A's connection, then,
//	         under one lock: marks every call now in flight and sends SIGTERM
//	         to -term-pid (server A), so "in flight at SIGTERM" is exact;
//	SIGTERM  stop: no new calls, wait (bounded) for the ones in flight,
//	         print the summary, exit 0.
//
// Output, one fact per line (the driver parses them):
//
//	info ...                     free text
//	flowing ok=N                 once calls succeed on the expected peers
//	sigterm pid=P in-flight=K on-A=J sleep-on-A=S   the moment A was signalled
//	state S +T                   channel connectivity changes, T since SIGTERM
//	conn begin|end ADDR +T       transports opened and closed (stats handler)
//	error phase=P code=C n=N msg="..."   first-attempt errors, grouped
//	retry code=C ok=N | failed=N outcomes of the application's retries
//	peer ADDR server=A|B ok=N    successful calls by the server that answered
//	                             (grpc.Peer of the last attempt)
//	inflight total=K ok=K failed=F servedA=J servedB=J sleep=S maxlat=MS
//	onA total=J ok=J servedA=J sleep=S   the in-flight calls whose current
//	                             attempt's HEADERS were queued on A's connection
//	                             (stats.OutHeader) when A was signalled
//	afterterm servedA=N          calls started after SIGTERM yet answered by A
//	result ok=N failed=N unavailable=U other=O badreply=R calls=N
//	FAIL: why                    (exit 1) the client could not run at all
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"
)

const method = "/echo.Echo/Say"

// rawCodec passes []byte through (grpc.Codec and encoding.Codec at once).
type rawCodec struct{}

func (rawCodec) Marshal(v interface{}) ([]byte, error) {
	if b, ok := v.([]byte); ok {
		return b, nil
	}
	return nil, fmt.Errorf("raw codec: cannot marshal %T", v)
}

func (rawCodec) Unmarshal(data []byte, v interface{}) error {
	p, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("raw codec: cannot unmarshal into %T", v)
	}
	*p = append((*p)[:0], data...)
	return nil
}

func (rawCodec) Name() string   { return "raw" }
func (rawCodec) String() string { return "raw" }

var out = struct {
	sync.Mutex
}{}

func say(format string, args ...interface{}) {
	out.Lock()
	defer out.Unlock()
	fmt.Printf(format+"\n", args...)
	os.Stdout.Sync()
}

// call is one application-level call (its retries included).
type call struct {
	msg    string
	sleep  bool
	start  time.Time
	end    time.Time
	atTerm bool // in flight when SIGTERM was sent to A
	onA    bool // ... and its current attempt was queued on A's connection then
	sentTo string
	code   codes.Code
	ok     bool
	peer   string
}

type errKey struct {
	phase string // before/after SIGTERM (of the first attempt's end)
	code  codes.Code
}

type state struct {
	mu       sync.Mutex
	inflight map[*call]struct{}
	done     []*call
	termAt   time.Time // zero until SIGTERM was sent
	errs     map[errKey]int
	errMsg   map[errKey]string
	retryOK  map[codes.Code]int
	retryBad map[codes.Code]int
	okByPeer map[string]int
	sleepOK  int
	sleepBy  map[string]bool // peers that answered a sleep call
	flowing  bool
}

func main() {
	addrA := flag.String("a", "", "server A address (HOST:PORT)")
	addrB := flag.String("b", "", "server B address (HOST:PORT)")
	lb := flag.String("lb", "pick_first", "load balancing policy: pick_first or round_robin")
	workers := flag.Int("workers", 8, "concurrent workers")
	sleepers := flag.Int("sleepers", 4, "how many of the workers send sleep calls")
	sleepMS := flag.Int("sleep-ms", 200, "the sleep calls' server-side sleep")
	retries := flag.Int("retries", 1, "application retries of a call that failed UNAVAILABLE")
	callTimeout := flag.Duration("call-timeout", 10*time.Second, "deadline of each attempt")
	termPid := flag.Int("term-pid", 0, "pid of server A, signalled on SIGUSR1")
	flowingOK := flag.Int("flowing-ok", 50, "successful calls before `flowing`")
	flowingPeers := flag.Int("flowing-peers", 1, "distinct peers with successful sleep calls before `flowing`")
	deadline := flag.Duration("deadline", 40*time.Second, "hard limit on the whole run")
	flag.Parse()
	if *addrA == "" || *addrB == "" || (*lb != "pick_first" && *lb != "round_robin") {
		say("FAIL: usage: loadcli -a A -b B [-lb pick_first|round_robin] ...")
		os.Exit(2)
	}
	// First of all: SIGUSR1's default action would kill the process.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGUSR1, syscall.SIGTERM, syscall.SIGINT)
	time.AfterFunc(*deadline, func() {
		say("FAIL: internal deadline %v passed", *deadline)
		os.Exit(3)
	})
	say("info grpc-go %s, lb %s, workers %d (%d x sleep:%dms), app retries on UNAVAILABLE %d",
		grpc.Version, *lb, *workers, *sleepers, *sleepMS, *retries)

	st := &state{
		inflight: map[*call]struct{}{},
		errs:     map[errKey]int{},
		errMsg:   map[errKey]string{},
		retryOK:  map[codes.Code]int{},
		retryBad: map[codes.Code]int{},
		okByPeer: map[string]int{},
		sleepBy:  map[string]bool{},
	}
	r := manual.NewBuilderWithScheme("loadcli")
	r.InitialState(resolver.State{Addresses: []resolver.Address{{Addr: *addrA}, {Addr: *addrB}}})
	opts := []grpc.DialOption{
		grpc.WithInsecure(),
		grpc.WithResolvers(r),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(rawCodec{})),
		grpc.WithBlock(),
		grpc.WithStatsHandler(tracker{st}),
	}
	if *lb == "round_robin" {
		opts = append(opts, grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"round_robin":{}}]}`))
	}
	dialCtx, dialCancel := context.WithTimeout(context.Background(), 10*time.Second)
	cc, err := grpc.DialContext(dialCtx, "loadcli:///echo", opts...)
	dialCancel()
	if err != nil {
		say("FAIL: dial: %v", err)
		os.Exit(1)
	}

	// Channel connectivity, relative to SIGTERM.
	go func() {
		s := cc.GetState()
		for {
			if !cc.WaitForStateChange(context.Background(), s) {
				return
			}
			s = cc.GetState()
			st.mu.Lock()
			t := st.termAt
			st.mu.Unlock()
			if t.IsZero() {
				say("state %v (before SIGTERM)", s)
			} else {
				say("state %v +%.3fs", s, time.Since(t).Seconds())
			}
			if s == connectivity.Shutdown {
				return
			}
		}
	}()

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < *workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				c := &call{sleep: w < *sleepers}
				if c.sleep {
					c.msg = fmt.Sprintf("sleep:%dms", *sleepMS)
				} else {
					c.msg = fmt.Sprintf("w%d-%d", w, n)
				}
				st.begin(c)
				invoke(cc, st, c, *callTimeout, *retries)
				st.finish(c, *flowingOK, *flowingPeers)
				if !c.ok {
					time.Sleep(5 * time.Millisecond) // no hot loop once nothing listens
				}
			}
		}(w)
	}

	for sig := range sigs {
		if sig == syscall.SIGUSR1 {
			// Waits (bounded) for a moment when a sleep call is on A's
			// connection, so that A has something to drain.
			waitUntil := time.Now().Add(3 * time.Second)
			for {
				st.mu.Lock()
				if !st.termAt.IsZero() {
					st.mu.Unlock()
					break
				}
				n, onA, sleepOnA := len(st.inflight), 0, 0
				for c := range st.inflight {
					if c.sentTo == *addrA {
						onA++
						if c.sleep {
							sleepOnA++
						}
					}
				}
				if sleepOnA == 0 && time.Now().Before(waitUntil) {
					st.mu.Unlock()
					time.Sleep(time.Millisecond)
					continue
				}
				for c := range st.inflight {
					c.atTerm = true
					c.onA = c.sentTo == *addrA
				}
				// Under the lock: no call starts, ends or changes connection
				// between the mark and the signal.
				kerr := syscall.Kill(*termPid, syscall.SIGTERM)
				st.termAt = time.Now()
				st.mu.Unlock()
				if kerr != nil {
					say("FAIL: kill -TERM %d: %v", *termPid, kerr)
					os.Exit(1)
				}
				say("sigterm pid=%d in-flight=%d on-A=%d sleep-on-A=%d", *termPid, n, onA, sleepOnA)
				break
			}
			continue
		}
		break // SIGTERM/SIGINT: stop
	}
	close(stop)
	drained := make(chan struct{})
	go func() { wg.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(*callTimeout*time.Duration(*retries+1) + 5*time.Second):
		say("FAIL: workers did not finish their calls in time")
		os.Exit(1)
	}
	st.summary(*addrA, *addrB)
	cc.Close()
}

// callKey carries the *call in the context, for the stats handler.
type callKey struct{}

// tracker learns which connection each attempt's HEADERS were queued on, and
// logs connections opening and closing relative to SIGTERM.
type tracker struct{ st *state }

func (t tracker) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context { return ctx }

func (t tracker) HandleRPC(ctx context.Context, s stats.RPCStats) {
	if h, ok := s.(*stats.OutHeader); ok && h.Client && h.RemoteAddr != nil {
		if c, ok := ctx.Value(callKey{}).(*call); ok {
			t.st.mu.Lock()
			c.sentTo = h.RemoteAddr.String()
			t.st.mu.Unlock()
		}
	}
}

func (t tracker) TagConn(ctx context.Context, info *stats.ConnTagInfo) context.Context {
	return context.WithValue(ctx, connKey{}, info.RemoteAddr.String())
}

type connKey struct{}

func (t tracker) HandleConn(ctx context.Context, s stats.ConnStats) {
	addr, _ := ctx.Value(connKey{}).(string)
	event := "begin"
	if _, ok := s.(*stats.ConnEnd); ok {
		event = "end"
	}
	t.st.mu.Lock()
	at := t.st.termAt
	t.st.mu.Unlock()
	if at.IsZero() {
		say("conn %s %s (before SIGTERM)", event, addr)
	} else {
		say("conn %s %s +%.3fs", event, addr, time.Since(at).Seconds())
	}
}

func invoke(cc *grpc.ClientConn, st *state, c *call, timeout time.Duration, retries int) {
	for attempt := 0; ; attempt++ {
		var p peer.Peer
		var reply []byte
		ctx, cancel := context.WithTimeout(context.WithValue(context.Background(), callKey{}, c), timeout)
		err := cc.Invoke(ctx, method, []byte(c.msg), &reply, grpc.Peer(&p))
		cancel()
		if err == nil {
			if p.Addr != nil {
				c.peer = p.Addr.String()
			}
			if string(reply) != "echo:"+c.msg {
				c.code = codes.Code(1000) // bad reply
				say("info bad reply to %q: %q", c.msg, reply)
				return
			}
			c.ok = true
			c.code = codes.OK
			if attempt > 0 {
				st.mu.Lock()
				st.retryOK[codes.Unavailable]++
				st.mu.Unlock()
			}
			return
		}
		c.code = status.Code(err)
		st.mu.Lock()
		if attempt == 0 {
			k := errKey{phase: "before-sigterm", code: c.code}
			if !st.termAt.IsZero() {
				k.phase = "after-sigterm"
			}
			st.errs[k]++
			if _, seen := st.errMsg[k]; !seen {
				st.errMsg[k] = status.Convert(err).Message()
			}
		} else {
			st.retryBad[c.code]++
		}
		st.mu.Unlock()
		if c.code != codes.Unavailable || attempt >= retries {
			return
		}
	}
}

func (st *state) begin(c *call) {
	st.mu.Lock()
	c.start = time.Now()
	st.inflight[c] = struct{}{}
	st.mu.Unlock()
}

func (st *state) finish(c *call, flowingOK, flowingPeers int) {
	st.mu.Lock()
	c.end = time.Now()
	delete(st.inflight, c)
	st.done = append(st.done, c)
	if c.ok {
		st.okByPeer[c.peer]++
		if c.sleep {
			st.sleepOK++
			st.sleepBy[c.peer] = true
		}
	}
	announce := false
	if !st.flowing {
		ok := 0
		for _, n := range st.okByPeer {
			ok += n
		}
		if ok >= flowingOK && len(st.sleepBy) >= flowingPeers && len(st.inflight) > 0 {
			st.flowing = true
			announce = true
		}
	}
	st.mu.Unlock()
	if announce {
		say("flowing ok=%d", st.count(func(c *call) bool { return c.ok }))
	}
}

func (st *state) count(pred func(*call) bool) int {
	st.mu.Lock()
	defer st.mu.Unlock()
	n := 0
	for _, c := range st.done {
		if pred(c) {
			n++
		}
	}
	return n
}

func codeName(c codes.Code) string {
	if c == codes.Code(1000) {
		return "BADREPLY"
	}
	return strings.ToUpper(strings.ReplaceAll(c.String(), " ", "_"))
}

func (st *state) summary(addrA, addrB string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	keys := make([]errKey, 0, len(st.errs))
	for k := range st.errs {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].phase != keys[j].phase {
			return keys[i].phase > keys[j].phase // before- first
		}
		return keys[i].code < keys[j].code
	})
	for _, k := range keys {
		say("error phase=%s code=%s n=%d msg=%q", k.phase, codeName(k.code), st.errs[k], st.errMsg[k])
	}
	for code, n := range st.retryOK {
		say("retry code=%s ok=%d", codeName(code), n)
	}
	for code, n := range st.retryBad {
		say("retry code=%s failed=%d", codeName(code), n)
	}
	peers := make([]string, 0, len(st.okByPeer))
	for p := range st.okByPeer {
		peers = append(peers, p)
	}
	sort.Strings(peers)
	for _, p := range peers {
		name := "?"
		switch p {
		case addrA:
			name = "A"
		case addrB:
			name = "B"
		}
		say("peer %s server=%s ok=%d", p, name, st.okByPeer[p])
	}
	var ok, failed, unavailable, other, badreply int
	var inTotal, inOK, inFailed, inA, inB, inSleep, afterA int
	var onA, onAOK, onAByA, onASleep int
	var maxLat time.Duration
	var inFail []string
	for _, c := range st.done {
		if c.ok {
			ok++
		} else {
			failed++
			switch c.code {
			case codes.Unavailable:
				unavailable++
			case codes.Code(1000):
				badreply++
			default:
				other++
			}
		}
		if c.atTerm {
			inTotal++
			if c.sleep {
				inSleep++
			}
			if c.ok {
				inOK++
				switch c.peer {
				case addrA:
					inA++
				case addrB:
					inB++
				}
			} else {
				inFailed++
				inFail = append(inFail, fmt.Sprintf("%q:%s", c.msg, codeName(c.code)))
			}
			if c.onA {
				onA++
				if c.sleep {
					onASleep++
				}
				if c.ok {
					onAOK++
					if c.peer == addrA {
						onAByA++
					}
				}
			}
			if lat := c.end.Sub(st.termAt); lat > maxLat {
				maxLat = lat
			}
		} else if !st.termAt.IsZero() && c.start.After(st.termAt) && c.ok && c.peer == addrA {
			afterA++
		}
	}
	say("inflight total=%d ok=%d failed=%d servedA=%d servedB=%d sleep=%d maxlat=%d",
		inTotal, inOK, inFailed, inA, inB, inSleep, maxLat.Milliseconds())
	say("onA total=%d ok=%d servedA=%d sleep=%d", onA, onAOK, onAByA, onASleep)
	if len(inFail) > 0 {
		say("info in-flight calls that failed: %s", strings.Join(inFail, ", "))
	}
	say("afterterm servedA=%d", afterA)
	say("result ok=%d failed=%d unavailable=%d other=%d badreply=%d calls=%d",
		ok, failed, unavailable, other, badreply, len(st.done))
}

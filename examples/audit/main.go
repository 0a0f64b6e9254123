// Command audit is an HTTP service that records an audit event in a runnel
// log for every request before it answers, and a worker that consumes the
// events as a member of a consumer group and appends them to a report.
//
//	go run ./examples/audit
//
// runs the whole thing on a temporary directory: it starts the server and
// two worker processes (this same program with -role), waits until the
// group has spread the topic's partitions over the workers, makes a few
// requests to the server on 127.0.0.1, waits until the group has
// committed every event, stops everything and prints the report.
//
// The roles also run on their own, as separate services sharing a log
// directory:
//
//	go run ./examples/audit -role=server -dir=/var/lib/audit -addr=127.0.0.1:8080
//	go run ./examples/audit -role=worker -dir=/var/lib/audit -report=/var/lib/audit/report.log
//
// Start as many workers as you like: the group spreads the topic's
// partitions over them and, when one stops or dies, the others take its
// partitions over. A worker appends each batch to the report, syncs it,
// and only then commits: an event is in the report at least once even if
// a worker is killed mid-batch.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/runnel-log/runnel"
)

const (
	topic      = "audit"
	group      = "audit-report"
	partitions = 4
)

// event is one audited request.
type event struct {
	Time   time.Time `json:"time"`
	Method string    `json:"method"`
	Path   string    `json:"path"`
	User   string    `json:"user"`
	Remote string    `json:"remote"`
	Status int       `json:"status"`
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is main with its arguments and output passed in, for the test.
func run(args []string, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("audit", flag.ContinueOnError)
	flags.SetOutput(stderr)
	role := flags.String("role", "demo", "demo (server, workers and requests), server or worker")
	dir := flags.String("dir", "", "log directory (demo default: a temporary directory)")
	addr := flags.String("addr", "127.0.0.1:0", "server: address to listen on")
	report := flags.String("report", "", "worker: report file (default <dir>/report.log)")
	workers := flags.Int("workers", 2, "demo: worker processes to start")
	requests := flags.Int("requests", 20, "demo: requests to make")
	if err := flags.Parse(args); err != nil {
		return 2
	}
	if *role != "demo" && *dir == "" {
		fmt.Fprintln(stderr, "audit: -dir is required with -role", *role)
		return 2
	}
	if *report == "" && *dir != "" {
		*report = filepath.Join(*dir, "report.log")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	out := &syncWriter{w: stdout}
	var err error
	switch *role {
	case "server":
		err = serve(ctx, *dir, *addr, out)
	case "worker":
		err = work(ctx, *dir, *report, out)
	case "demo":
		err = demo(ctx, *dir, *workers, *requests, out)
	default:
		err = fmt.Errorf("unknown role %q", *role)
	}
	if err != nil {
		fmt.Fprintf(stderr, "audit %s: %v\n", *role, err)
		return 1
	}
	return 0
}

// openLog opens the log and creates the audit topic if it is missing.
func openLog(dir string) (*runnel.Log, error) {
	l, err := runnel.Open(dir, nil) // durable: an acknowledged event survives power loss
	if err != nil {
		return nil, err
	}
	err = l.CreateTopic(topic, runnel.TopicConfig{Partitions: partitions})
	if err != nil && !errors.Is(err, runnel.ErrTopicExists) {
		l.Close()
		return nil, err
	}
	return l, nil
}

// serve runs the HTTP service until ctx ends.
func serve(ctx context.Context, dir, addr string, out io.Writer) error {
	l, err := openLog(dir)
	if err != nil {
		return err
	}
	defer l.Close()
	p, err := l.Producer(topic, nil)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: auditHandler(p), ReadHeaderTimeout: 5 * time.Second}
	fmt.Fprintf(out, "listening on %s\n", ln.Addr())
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(shutdown)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return p.Close()
}

// auditHandler answers every request, but only after its audit event is
// acknowledged: no request is served without a trace. The user's name is
// the key, so one user's events stay in order.
func auditHandler(p *runnel.Producer) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user := r.Header.Get("X-User")
		if user == "" {
			user = "anonymous"
		}
		status := http.StatusOK
		if strings.HasPrefix(r.URL.Path, "/admin") && user != "root" {
			status = http.StatusForbidden
		}
		ev := event{Time: time.Now(), Method: r.Method, Path: r.URL.Path, User: user, Remote: r.RemoteAddr, Status: status}
		data, _ := json.Marshal(ev)
		pos, err := p.Send(r.Context(), runnel.Record{Key: []byte(user), Value: data, Time: ev.Time})
		if err != nil {
			http.Error(w, "audit log unavailable: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(status)
		fmt.Fprintf(w, "%s %s: %d (audit event %d/%d)\n", r.Method, r.URL.Path, status, pos.Partition, pos.Offset)
	})
}

// work consumes audit events as a member of the report group until ctx
// ends, appending each batch to the report before committing it.
func work(ctx context.Context, dir, reportPath string, out io.Writer) error {
	l, err := openLog(dir)
	if err != nil {
		return err
	}
	defer l.Close()
	report, err := os.OpenFile(reportPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer report.Close()
	me := fmt.Sprintf("worker-%d", os.Getpid())
	c, err := l.Consumer(topic, &runnel.ConsumerOptions{
		Group:             group,
		MemberName:        me,
		DisableAutoCommit: true, // commit only what the report holds
		OnAssigned: func(_ *runnel.Consumer, ps []int) {
			fmt.Fprintf(out, "%s: assigned partitions %v\n", me, ps)
		},
		OnRevoked: func(_ *runnel.Consumer, ps []int) {
			fmt.Fprintf(out, "%s: gave up partitions %v\n", me, ps)
		},
	})
	if err != nil {
		return err
	}
	defer c.Close()
	var buf []byte
	for {
		recs, err := c.Poll(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		buf = buf[:0]
		for _, r := range recs {
			var ev event
			if err := json.Unmarshal(r.Value, &ev); err != nil {
				buf = fmt.Appendf(buf, "unreadable event %d/%d: %v\n", r.Partition, r.Offset, err)
				continue
			}
			buf = fmt.Appendf(buf, "%s  %-6s %-14s user=%-9s status=%d  event=%d/%d by %s\n",
				ev.Time.UTC().Format("2006-01-02 15:04:05.000000"), ev.Method, ev.Path, ev.User, ev.Status, r.Partition, r.Offset, me)
		}
		if _, err := report.Write(buf); err != nil {
			return err
		}
		if err := report.Sync(); err != nil {
			return err
		}
		if err := c.Commit(ctx); err != nil {
			return err
		}
	}
}

// demo runs a server and workers as child processes, makes requests,
// waits for the report to hold every event and prints it.
func demo(ctx context.Context, dir string, workers, requests int, out io.Writer) error {
	if dir == "" {
		tmp, err := os.MkdirTemp("", "runnel-audit-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	reportPath := filepath.Join(dir, "report.log")
	l, err := openLog(dir)
	if err != nil {
		return err
	}
	defer l.Close()
	exe, err := os.Executable()
	if err != nil {
		return err
	}

	// Each child's stdout and stderr are copied to out, labelled, by
	// forwarders; a child's output is all in out once its forwarders are
	// done, which they are when it has exited (and only then may it be
	// waited for: Wait closes the pipes).
	var children []*exec.Cmd
	var forwarders sync.WaitGroup
	stopAll := func() error {
		for _, c := range children {
			c.Process.Signal(syscall.SIGTERM)
		}
		forwarders.Wait()
		var errs []error
		for _, c := range children {
			if err := c.Wait(); err != nil {
				errs = append(errs, fmt.Errorf("%s: %v", c.Args[1], err))
			}
		}
		children = nil
		return errors.Join(errs...)
	}
	defer stopAll()
	// forward copies r to out. The first line goes to first instead, if
	// that is not nil, which is closed if there is none.
	forward := func(name string, r io.Reader, first chan<- string) {
		defer forwarders.Done()
		sc := bufio.NewScanner(r)
		if first != nil {
			if sc.Scan() {
				first <- sc.Text()
			}
			close(first)
		}
		for sc.Scan() {
			fmt.Fprintf(out, "[%s] %s\n", name, sc.Text())
		}
	}
	start := func(name string, first chan<- string, args ...string) error {
		cmd := exec.Command(exe, args...)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			return err
		}
		stderr, err := cmd.StderrPipe()
		if err != nil {
			return err
		}
		if err := cmd.Start(); err != nil {
			return err
		}
		children = append(children, cmd)
		forwarders.Add(2)
		go forward(name, stdout, first)
		go forward(name, stderr, nil)
		return nil
	}

	listening := make(chan string, 1)
	if err := start("server", listening, "-role=server", "-dir="+dir, "-addr=127.0.0.1:0"); err != nil {
		return err
	}
	line, ok := <-listening
	if !ok {
		return errors.New("the server did not start")
	}
	addr, ok := strings.CutPrefix(line, "listening on ")
	if !ok {
		return fmt.Errorf("the server said %q", line)
	}
	fmt.Fprintf(out, "[server] listening on %s\n", addr)
	for i := range workers {
		name := fmt.Sprintf("worker %d", i+1)
		if err := start(name, nil, "-role=worker", "-dir="+dir, "-report="+reportPath); err != nil {
			return err
		}
	}
	// So that the report shows the workers sharing the events.
	if err := waitUntil(ctx, "the workers to share the partitions", func() (bool, error) { return spread(l, workers) }); err != nil {
		return err
	}

	client := &http.Client{Timeout: 10 * time.Second}
	paths := []struct{ method, path, user string }{
		{"GET", "/orders", "ada"},
		{"POST", "/orders", "ada"},
		{"GET", "/admin/users", "grace"},
		{"GET", "/admin/users", "root"},
		{"DELETE", "/orders/7", "linus"},
		{"GET", "/", ""},
	}
	for i := range requests {
		pr := paths[i%len(paths)]
		req, _ := http.NewRequestWithContext(ctx, pr.method, "http://"+addr+pr.path, nil)
		if pr.user != "" {
			req.Header.Set("X-User", pr.user)
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Fprintf(out, "[client] %s", body)
	}

	// The group's committed offsets say when the workers are done.
	if err := waitUntil(ctx, "the workers to process every event", func() (bool, error) { return caughtUp(l) }); err != nil {
		return err
	}
	if err := stopAll(); err != nil {
		return err
	}

	data, err := os.ReadFile(reportPath)
	if err != nil {
		return err
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	sort.Strings(lines) // by time
	fmt.Fprintf(out, "\nreport (%s): %d events\n", reportPath, len(lines))
	for _, line := range lines {
		fmt.Fprintln(out, "  "+line)
	}
	return nil
}

// waitUntil polls cond until it holds, or fails. It gives up after a
// minute, which only a stuck child takes.
func waitUntil(ctx context.Context, what string, cond func() (bool, error)) error {
	const patience = time.Minute
	deadline := time.Now().Add(patience)
	for {
		ok, err := cond()
		if err != nil {
			return fmt.Errorf("waiting for %s: %w", what, err)
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("waited %v for %s", patience, what)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// auditOffsets describes the report group's members and offsets for the
// audit topic; ok is false while it has none (no worker has joined yet).
//
// DescribeGroup describes every topic the group has offsets for, and
// still does when one topic's offsets file is damaged: its error is then
// made of a *runnel.GroupTopicError per topic it could not read
// (runnel.GroupTopicErrors), and the other topics are described. Damage
// to another topic's file (the group's name used by another program) is
// no concern of this one; damage to the audit topic's is returned, as no
// wait mends it.
func auditOffsets(l *runnel.Log) (gt runnel.GroupTopic, ok bool, err error) {
	info, err := l.DescribeGroup(group)
	if errors.Is(err, runnel.ErrGroupNotFound) {
		return gt, false, nil // no worker has joined yet
	}
	damaged := runnel.GroupTopicErrors(err)
	if err != nil && damaged == nil {
		return gt, false, err // the group could not be read at all
	}
	for _, gte := range damaged {
		if gte.Topic == topic {
			return gt, false, gte
		}
	}
	for _, gt := range info.Topics {
		if gt.Topic == topic {
			return gt, true, nil
		}
	}
	return gt, false, nil
}

// spread reports whether the report group has its workers, all of them
// live, and its partitions spread over them: every partition owned, and
// every worker owning some while there are enough to go round.
func spread(l *runnel.Log, workers int) (bool, error) {
	gt, ok, err := auditOffsets(l)
	if !ok || err != nil {
		return false, err
	}
	if len(gt.Members) != workers {
		return false, nil
	}
	for _, p := range gt.Partitions {
		if !p.Owned {
			return false, nil
		}
	}
	for _, m := range gt.Members {
		if len(m.Partitions) == 0 && workers <= partitions {
			return false, nil
		}
	}
	return true, nil
}

// caughtUp reports whether the report group has committed every event.
func caughtUp(l *runnel.Log) (bool, error) {
	gt, ok, err := auditOffsets(l)
	if !ok || err != nil {
		return false, err
	}
	for _, p := range gt.Partitions {
		if p.End > 0 && p.Lag != 0 {
			return false, nil
		}
	}
	return true, nil
}

// syncWriter serializes writes from the goroutines that share an output.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

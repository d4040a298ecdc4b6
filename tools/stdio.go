package tools

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/mark3labs/mcp-go/client/transport"
)

// Grace periods of a stdio upstream's shutdown: stdin closed, then SIGTERM,
// then SIGKILL to the whole process group.
const (
	stdinGrace = 500 * time.Millisecond
	termGrace  = time.Second
)

// exitError is why a stdio conn ended when its process exited on its own.
type exitError struct {
	integration string
	err         error // from Wait; nil for exit status 0
}

func (e *exitError) Error() string {
	if e.err == nil {
		return "upstream process exited"
	}
	return fmt.Sprintf("upstream process exited: %v", e.err)
}

func (e *exitError) Unwrap() error { return ErrUpstreamExited }

// process is a stdio upstream's child process, leader of its own process
// group so that Close ends whatever it started too (npx → node, ...).
type process struct {
	cmd    *exec.Cmd
	stdout *os.File      // parent's read end
	exited chan struct{} // closed once Wait returned and the group is killed
	stderr *tailBuffer   // last bytes of its stderr, for the exit log
	// stderrDone is closed once its stderr reached EOF.
	stderrDone chan struct{}
}

// dialStdio starts l's command and an MCP session over its stdin/stdout.
// The process gets the allowlisted variables of the gateway's environment
// and l's rendered Env, nothing else.
func (p *Pool) dialStdio(ctx context.Context, tenant string, l *launch) (*Conn, error) {
	c := newConn(tenant, l.in, l, &p.opts)
	proc, stdin, err := p.spawn(l)
	if err != nil {
		c.cancel(ErrConnClosed)
		return nil, err
	}
	c.pid = proc.cmd.Process.Pid
	go func() {
		err := proc.cmd.Wait()
		killGroup(proc.cmd.Process.Pid, syscall.SIGKILL) // stragglers
		// Cause first, then exited: whoever sees exited closed finds why.
		if c.ctx.Err() == nil {
			c.cancel(&exitError{integration: l.in.Name, err: err})
			// What it wrote as it died may still be in the pipe.
			select {
			case <-proc.stderrDone:
			case <-time.After(500 * time.Millisecond):
			}
			c.logger.Warn("upstream_exited", "error", fmt.Sprint(err), "stderr", c.scrubber.String(proc.stderr.String()))
		}
		close(proc.exited)
		// Every writer of stdout is dead: the transport reads to EOF. The
		// close is for a writer outside the group that keeps it open.
		time.AfterFunc(termGrace, func() { proc.stdout.Close() })
	}()
	c.teardown = func() { proc.stop(); proc.stdout.Close() }
	c.kill = func() {
		select {
		case <-proc.exited: // its pid may be another's by now
		default:
			killGroup(proc.cmd.Process.Pid, syscall.SIGKILL)
		}
	}

	// NewIO: the process is ours, not the transport's, so that the pool
	// controls its environment and process group, and sees it exit. Its
	// pipes go through c.pipe, the direct calls' lane.
	c.pipe = newPipe(proc.stdout, stdin)
	c.pipe.heard = &c.heard
	// A process that stops reading its stdin (hung, or busy and not
	// reading) blocks a write once the pipe's buffer is full, and every
	// call behind it, past their timeouts: after one timeout of it, the
	// connection ends and the next call starts the process again.
	c.pipe.writeTimeout = c.timeout
	c.pipe.stuck = func() {
		if c.ctx.Err() == nil {
			c.cancel(fmt.Errorf("%w: it has not read its input for %s", ErrUpstreamStuck, c.timeout))
			c.logger.Warn("upstream_stuck", "after", c.timeout.String())
		}
		go c.Close()
	}
	tr := transport.NewIO(c.pipe, c.pipe, nil)
	cli, err := c.initialize(ctx, track(c, tr))
	if err != nil {
		// A handshake that failed because the process died says so. (The
		// client's error does not always wrap the transport's, so any
		// failure waits, briefly, for an exit.)
		select {
		case <-proc.exited:
		case <-time.After(time.Second):
		}
		if cause := context.Cause(c.ctx); errors.Is(cause, ErrUpstreamExited) {
			err = fmt.Errorf("%w (during the MCP handshake)", cause)
		}
		_ = tr.Close()
		c.cancel(ErrConnClosed)
		c.teardown()
		return nil, err
	}
	c.client = cli
	c.logger.Debug("upstream_process_started", "pid", proc.cmd.Process.Pid)
	return c, nil
}

// spawn starts l's command with its own pipes and process group.
func (p *Pool) spawn(l *launch) (*process, io.WriteCloser, error) {
	var toClose []*os.File
	closeAll := func() {
		for _, f := range toClose {
			f.Close()
		}
	}
	pipe := func() (r, w *os.File, err error) {
		r, w, err = os.Pipe()
		if err == nil {
			toClose = append(toClose, r, w)
		}
		return r, w, err
	}
	stdinR, stdinW, err := pipe()
	if err != nil {
		return nil, nil, err
	}
	stdoutR, stdoutW, err := pipe()
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	stderrR, stderrW, err := pipe()
	if err != nil {
		closeAll()
		return nil, nil, err
	}

	cmd := exec.Command(l.in.Upstream.Command, l.in.Upstream.Args...)
	cmd.Env = p.childEnv(l.env)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdinR, stdoutW, stderrW
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		closeAll()
		return nil, nil, err
	}
	// The child has its ends; ours would keep EOF from ever arriving.
	stdinR.Close()
	stdoutW.Close()
	stderrW.Close()

	proc := &process{cmd: cmd, stdout: stdoutR, exited: make(chan struct{}), stderr: &tailBuffer{max: 4096}, stderrDone: make(chan struct{})}
	go func() {
		_, _ = io.Copy(proc.stderr, stderrR)
		stderrR.Close()
		close(proc.stderrDone)
	}()
	return proc, stdinW, nil
}

// childEnv is the allowlisted part of the gateway's environment followed by
// the integration's rendered variables (which win on a clash).
func (p *Pool) childEnv(rendered []string) []string {
	env := make([]string, 0, len(p.opts.EnvAllowlist)+len(rendered))
	for _, k := range p.opts.EnvAllowlist {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return append(env, rendered...)
}

// stop ends the process group once stdin is closed: the child gets
// stdinGrace to exit on its own, then SIGTERM, then SIGKILL.
func (proc *process) stop() {
	select {
	case <-proc.exited:
		return
	case <-time.After(stdinGrace):
	}
	killGroup(proc.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-proc.exited:
		return
	case <-time.After(termGrace):
	}
	killGroup(proc.cmd.Process.Pid, syscall.SIGKILL)
	<-proc.exited
}

// killGroup signals the process group led by pid.
func killGroup(pid int, sig syscall.Signal) {
	_ = syscall.Kill(-pid, sig)
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte // guarded by mu
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

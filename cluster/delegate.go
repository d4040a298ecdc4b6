package cluster

import (
	"bytes"
	"context"
	"log"
	"log/slog"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// delegate is the node as memberlist sees it: messages in, broadcasts
// out, no metadata or state of its own to exchange (a change is news, not
// state: a node joining late has nothing to catch up on, its caches are
// empty).
type delegate struct{ n *Node }

func (d delegate) NodeMeta(limit int) []byte { return nil }

// NotifyMsg is told of each message received; msg is memberlist's to
// reuse once it returns.
func (d delegate) NotifyMsg(msg []byte) { d.n.receive(msg) }

func (d delegate) GetBroadcasts(overhead, limit int) [][]byte {
	return d.n.queue.GetBroadcasts(overhead, limit)
}

func (d delegate) LocalState(join bool) []byte            { return nil }
func (d delegate) MergeRemoteState(buf []byte, join bool) {}

// broadcast is one change in memberlist's queue. Changes never replace
// each other: each has its own ID.
type broadcast []byte

func (b broadcast) Invalidates(memberlist.Broadcast) bool { return false }
func (b broadcast) Message() []byte                       { return b }
func (b broadcast) Finished()                             {}

// events logs the membership as it changes.
type events struct{ log *slog.Logger }

func (e events) NotifyJoin(n *memberlist.Node) {
	e.log.Info("cluster_member_joined", "node", n.Name, "addr", n.Address())
}

func (e events) NotifyLeave(n *memberlist.Node) {
	e.log.Info("cluster_member_left", "node", n.Name, "addr", n.Address())
}

func (e events) NotifyUpdate(n *memberlist.Node) {}

// seenTTL is how long a message ID is remembered: far longer than gossip
// repeats a message (a few hundred milliseconds).
const seenTTL = 2 * time.Minute

// maxSeen bounds the IDs remembered; beyond it, the oldest go first.
const maxSeen = 100_000

// seenSet remembers the message IDs heard or sent, so each is acted on once.
type seenSet struct {
	mu  sync.Mutex
	ids map[string]time.Time // guarded by mu
}

// add records id and reports whether it is new.
func (s *seenSet) add(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.ids[id]; ok {
		return false
	}
	if s.ids == nil {
		s.ids = map[string]time.Time{}
	}
	if len(s.ids) >= maxSeen {
		s.pruneLocked(time.Now().Add(seenTTL / 2))
	}
	s.ids[id] = time.Now()
	return true
}

// prune forgets the IDs older than seenTTL.
func (s *seenSet) prune() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pruneLocked(time.Now())
}

// pruneLocked forgets the IDs older than seenTTL at now.
func (s *seenSet) pruneLocked(now time.Time) {
	for id, at := range s.ids {
		if now.Sub(at) >= seenTTL {
			delete(s.ids, id)
		}
	}
}

// memberlistLogger turns memberlist's "[LEVEL] memberlist: message" lines
// into log records at that level (debug ones dropped unless enabled).
func memberlistLogger(l *slog.Logger) *log.Logger {
	return log.New(logWriter{l}, "", 0)
}

type logWriter struct{ log *slog.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	line := bytes.TrimSpace(p)
	level := slog.LevelInfo
	for prefix, l := range map[string]slog.Level{
		"[DEBUG]": slog.LevelDebug, "[INFO]": slog.LevelInfo, "[WARN]": slog.LevelWarn, "[ERR]": slog.LevelError,
	} {
		if rest, ok := bytes.CutPrefix(line, []byte(prefix)); ok {
			level, line = l, bytes.TrimSpace(rest)
			break
		}
	}
	w.log.Log(context.Background(), level, "cluster_memberlist", "message", string(line))
	return len(p), nil
}

package audit

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
)

// Report is what Verify found in a trail.
type Report struct {
	Records     int // lines read, checkpoints included
	Unchained   int // records before the chain began (written before chaining)
	Segments    int // chains begun (a stream's trail begins one at each start)
	Checkpoints int // signed checkpoints verified
	// AfterCheckpoint counts the records after the last checkpoint, which
	// only the chain covers: a cut among them is not seen.
	AfterCheckpoint int
	// Problems, one line each, name the line where the trail stops being
	// what was written: "line 57: …". None: the trail is intact.
	Problems []string
}

// maxProblems bounds a report: past it the trail is plainly not intact.
const maxProblems = 50

// Verify reads a trail written by a chained sink and checks every link:
// each line's prev is the hash of the line before it, seq counts on by
// one, and each checkpoint's signature verifies with the key of its keyId
// among keys. A record changed, removed, inserted or moved is a problem
// at the line after it (or at it); a trail rewritten with new hashes fails
// at its next checkpoint. A read error is returned as an error.
func Verify(r io.Reader, keys map[string]ed25519.PublicKey) (Report, error) {
	var rep Report
	v := verifier{keys: keys, rep: &rep}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		rep.Records++
		v.line(rep.Records, sc.Bytes())
		if len(rep.Problems) >= maxProblems {
			rep.Problems = append(rep.Problems, "… (stopped: too many problems)")
			return rep, nil
		}
	}
	return rep, sc.Err()
}

type verifier struct {
	keys    map[string]ed25519.PublicKey
	rep     *Report
	prev    [sha256.Size]byte // hash of the last line
	seq     uint64            // its seq (0: none, or unchained)
	chained bool              // a chained record was seen
	any     bool              // a line was seen
}

type linked struct {
	Seq       *uint64 `json:"seq"`
	Prev      *string `json:"prev"`
	Msg       string  `json:"msg"`
	KeyID     string  `json:"keyId"`
	Signature string  `json:"signature"`
}

func (v *verifier) problem(n int, format string, args ...any) {
	v.rep.Problems = append(v.rep.Problems, fmt.Sprintf("line %d: ", n)+fmt.Sprintf(format, args...))
}

func (v *verifier) line(n int, raw []byte) {
	defer func() { v.prev, v.any = sha256.Sum256(raw), true }()
	var r linked
	if err := json.Unmarshal(raw, &r); err != nil {
		v.problem(n, "not a JSON record (%.60q)", bytes.TrimSpace(raw))
		v.seq = 0
		return
	}
	if r.Seq == nil || r.Prev == nil {
		if v.chained {
			v.problem(n, "not linked to the chain (a record inserted, or its seq and prev removed)")
		} else {
			v.rep.Unchained++
		}
		v.seq = 0
		return
	}
	var prev [sha256.Size]byte
	if b, err := hex.DecodeString(*r.Prev); err != nil || len(b) != len(prev) {
		v.problem(n, "prev is not a SHA-256")
	} else {
		copy(prev[:], b)
	}
	switch {
	case v.any && prev == v.prev:
		if *r.Seq != v.seq+1 {
			v.problem(n, "seq %d after %d", *r.Seq, v.seq)
		}
	case prev == [sha256.Size]byte{} && *r.Seq == 1:
		v.rep.Segments++ // a chain begins
	case !v.any:
		v.problem(n, "the first record follows one that is not in this file (its beginning was cut)")
	default:
		v.problem(n, "does not follow line %d: that record was changed, or records were removed, inserted or moved here", n-1)
	}
	v.chained, v.seq = true, *r.Seq
	v.rep.AfterCheckpoint++
	if r.Msg == CheckpointMessage {
		v.checkpoint(n, r, prev)
	}
}

func (v *verifier) checkpoint(n int, r linked, prev [sha256.Size]byte) {
	key, ok := v.keys[r.KeyID]
	if !ok {
		v.problem(n, "checkpoint signed by key %q, which was not given", r.KeyID)
		return
	}
	sig, err := base64.StdEncoding.DecodeString(r.Signature)
	if err != nil || !ed25519.Verify(key, checkpointMessage(*r.Seq, prev), sig) {
		v.problem(n, "checkpoint signature does not verify: the trail before it is not the one signed")
		return
	}
	v.rep.Checkpoints++
	v.rep.AfterCheckpoint = 0
}

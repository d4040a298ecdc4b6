package audit

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"strconv"
	"time"
)

// The hash chain. Each record of a chained sink ends with two fields:
//
//	..., "seq": 42, "prev": "<hex SHA-256 of the previous line>"}
//
// seq counts the sink's records (1 for the first), and prev is the
// SHA-256 of the line before it as written, without its newline (all
// zeros for the first line of a chain). A record changed, removed,
// inserted or moved breaks the link of the line after it; [Verify] finds
// it. A chain over a file continues the file's last record when the file
// is opened again, and when another process appended to it meanwhile.
//
// Every CheckpointEvery records, at least every CheckpointInterval while
// records come, and when the sink closes, a chained sink with a signing
// key writes a checkpoint, itself a link of the chain:
//
//	{"time": ..., "level": "INFO", "msg": "audit_checkpoint", "keyId": "…",
//	 "signature": "<base64 Ed25519 signature>", "seq": 43, "prev": "…"}
//
// The signature covers the checkpoint's seq and prev, so the whole trail
// up to it: one who can rewrite the file but does not hold the key can
// recompute the hashes, not the signatures. Records after the last
// checkpoint are covered by the chain only (a cut after it is not seen).

// CheckpointMessage is the msg of a checkpoint record.
const CheckpointMessage = "audit_checkpoint"

// Checkpoint defaults.
const (
	DefaultCheckpointEvery    = 1000
	DefaultCheckpointInterval = time.Minute
)

// chain is a sink's end of the hash chain; guarded by the sink's mu.
type chain struct {
	seq  uint64
	prev [sha256.Size]byte

	key      ed25519.PrivateKey // nil: no checkpoints
	keyID    string
	every    int
	interval time.Duration
	since    int       // records since the last checkpoint
	last     time.Time // when the last checkpoint (or the chain) began
}

func newChain(o Options) *chain {
	c := &chain{key: o.SigningKey, every: o.CheckpointEvery, interval: o.CheckpointInterval, last: time.Now()}
	if c.every <= 0 {
		c.every = DefaultCheckpointEvery
	}
	if c.interval <= 0 {
		c.interval = DefaultCheckpointInterval
	}
	if c.key != nil {
		c.keyID = KeyID(c.key.Public().(ed25519.PublicKey))
	}
	return c
}

// KeyID names a checkpoint signing key: the first 16 hex digits of the
// SHA-256 of its public key.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// link ends record (a JSON object without its closing brace) with the
// chain's fields and a newline, and advances the chain to it.
func (c *chain) link(record []byte) []byte {
	c.seq++
	record = append(record, `,"seq":`...)
	record = strconv.AppendUint(record, c.seq, 10)
	record = append(record, `,"prev":"`...)
	record = hex.AppendEncode(record, c.prev[:])
	record = append(record, `"}`...)
	c.prev = sha256.Sum256(record)
	c.since++
	return append(record, '\n')
}

// checkpointDue reports whether a checkpoint is to follow the record just
// linked.
func (c *chain) checkpointDue(now time.Time) bool {
	return c.key != nil && c.since > 0 && (c.since >= c.every || now.Sub(c.last) >= c.interval)
}

// checkpoint returns the next link: a signed checkpoint.
func (c *chain) checkpoint(now time.Time) []byte {
	sig := ed25519.Sign(c.key, checkpointMessage(c.seq+1, c.prev))
	b := []byte(`{"time":"`)
	b = now.UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z07:00")
	b = append(b, `","level":"INFO","msg":"`+CheckpointMessage+`","keyId":"`...)
	b = append(b, c.keyID...)
	b = append(b, `","signature":"`...)
	b = base64.StdEncoding.AppendEncode(b, sig)
	b = append(b, '"')
	line := c.link(b)
	c.since, c.last = 0, now
	return line
}

// checkpointMessage is what a checkpoint's signature signs.
func checkpointMessage(seq uint64, prev [sha256.Size]byte) []byte {
	return []byte("connectors-audit-checkpoint\n" + strconv.FormatUint(seq, 10) + "\n" + hex.EncodeToString(prev[:]))
}

// resume continues the chain from the last line of f, as it is now: its
// seq and its hash. A last line that is not a chained record (a file
// written before chaining) is linked to, and the count starts again.
func (c *chain) resume(f *os.File) (size int64, err error) {
	last, size, err := lastLine(f)
	if err != nil || last == nil {
		return size, err
	}
	var r struct {
		Seq uint64 `json:"seq"`
	}
	_ = json.Unmarshal(last, &r)
	c.seq, c.prev = r.Seq, sha256.Sum256(last)
	return size, nil
}

// lastLine returns f's last line without its newline (nil for an empty
// file), and f's size.
func lastLine(f *os.File) ([]byte, int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, 0, err
	}
	size := fi.Size()
	const chunk = 64 << 10
	var tail []byte
	for off := size; off > 0; {
		n := min(int64(chunk), off)
		off -= n
		buf := make([]byte, n)
		if _, err := f.ReadAt(buf, off); err != nil && err != io.EOF {
			return nil, size, err
		}
		tail = append(buf, tail...)
		body := bytes.TrimRight(tail, "\n")
		if i := bytes.LastIndexByte(body, '\n'); i >= 0 {
			return body[i+1:], size, nil
		}
		if off == 0 && len(body) > 0 {
			return body, size, nil
		}
	}
	return nil, size, nil
}

package server

import (
	"bytes"
	"context"
	"encoding/json"

	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"

	"github.com/connectors-gateway/connectors/internal/rawjson"
)

// An answer speaks the era of its request. A 2026-07-28 upstream puts
// resultType and its serverInfo (_meta) in every result, as that version
// requires; forwarded as they are to an initialize-era agent (2025-11-25
// and earlier), they are fields its protocol does not have. mcp-go adds
// them itself only to 2026-07-28 answers, so what an initialize-era answer
// must lose is what the upstream put there, on either lane.

// metaServerInfo is the _meta key of the 2026-07-28 serverInfo, quoted as
// it appears in JSON.
const metaServerInfo = `"` + mcp.MetaKeyServerInfo + `"`

// initializeEraResult is the views' mcp-go OnSuccess hook: on a request of
// the initialize era it takes the 2026-only fields out of the result before
// mcp-go encodes it (every result type holds mcp.Result, whose pointer
// methods reach them).
func initializeEraResult(ctx context.Context, _ any, _ mcp.MCPMethod, _ any, result any) {
	if mcpserver.IsModernRequest(ctx) {
		return
	}
	r, ok := result.(mcp.ResultMetadata)
	if !ok {
		return
	}
	if r.GetResultType() == mcp.ResultTypeComplete {
		r.SetResultType("") // absent means complete; input_required is resolved by mcp-go first
	}
	if meta := r.GetResultMeta(); meta != nil && meta.AdditionalFields[mcp.MetaKeyServerInfo] != nil {
		delete(meta.AdditionalFields, mcp.MetaKeyServerInfo)
		if meta.ProgressToken == nil && len(meta.AdditionalFields) == 0 {
			r.SetResultMeta(nil)
		}
	}
}

// initializeEraRaw is initializeEraResult for a raw result (the direct
// lane's, on a 2025-11-25 session): a top-level resultType "complete" and
// _meta's serverInfo are cut out of the bytes, and an _meta left empty
// with them. A result that holds neither (the byte search says so without
// a walk) is returned as it is; one that is not a JSON object, too. res
// must be valid JSON, as the raw client's results are (tools.Conn checks
// the answer before it hands the result on).
func initializeEraRaw(res json.RawMessage) json.RawMessage {
	if !bytes.Contains(res, []byte(`"resultType"`)) && !bytes.Contains(res, []byte(metaServerInfo)) {
		return res
	}
	out := make([]byte, 0, len(res))
	out = append(out, '{')
	first := true
	member := func(key, value []byte) {
		if !first {
			out = append(out, ',')
		}
		first = false
		out = append(out, '"')
		out = append(out, key...)
		out = append(out, '"', ':')
		out = append(out, value...)
	}
	ok := rawjson.Members(res, func(key, value []byte) bool {
		switch string(key) {
		case "resultType":
			if string(value) != `"`+string(mcp.ResultTypeComplete)+`"` {
				member(key, value)
			}
		case "_meta":
			if meta, keep := withoutServerInfo(value); keep {
				member(key, meta)
			}
		default:
			member(key, value)
		}
		return true
	})
	if !ok {
		return res
	}
	return append(out, '}')
}

// withoutServerInfo returns the _meta object meta without its serverInfo
// member, and whether anything is left of it.
func withoutServerInfo(meta []byte) ([]byte, bool) {
	if !bytes.Contains(meta, []byte(metaServerInfo)) {
		return meta, true
	}
	out := make([]byte, 0, len(meta))
	out = append(out, '{')
	n := 0
	ok := rawjson.Members(meta, func(key, value []byte) bool {
		if string(key) == mcp.MetaKeyServerInfo {
			return true
		}
		if n > 0 {
			out = append(out, ',')
		}
		n++
		out = append(out, '"')
		out = append(out, key...)
		out = append(out, '"', ':')
		out = append(out, value...)
		return true
	})
	if !ok {
		return meta, true // not an object: left as the upstream wrote it
	}
	return append(out, '}'), n > 0
}

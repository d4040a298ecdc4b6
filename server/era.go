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

// initializeEraDirect is initializeEraResult for a result as bytes (the direct
// lane's, on a 2025-11-25 session): a top-level resultType "complete" and
// _meta's serverInfo are cut out of the bytes, and an _meta left empty
// with them. A result that holds neither (the byte search says so without
// a walk) is returned as it is; one that is not a JSON object, too. res
// must be valid JSON, as the direct lane's results are (tools.Conn checks
// the answer before it hands the result on). One walk, one allocation.
func initializeEraDirect(res json.RawMessage) json.RawMessage {
	if !bytes.Contains(res, []byte(`"resultType"`)) && !bytes.Contains(res, []byte(metaServerInfo)) {
		return res
	}
	out := make([]byte, 0, len(res))
	out = append(out, '{')
	n := 0 // members written
	member := func(key []byte) {
		if n > 0 {
			out = append(out, ',')
		}
		n++
		out = append(out, '"')
		out = append(out, key...)
		out = append(out, '"', ':')
	}
	ok := rawjson.Members(res, func(key, value []byte) bool {
		switch {
		case string(key) == "resultType" && string(value) == `"`+string(mcp.ResultTypeComplete)+`"`:
		case string(key) == "_meta" && len(value) > 0 && value[0] == '{' && bytes.Contains(value, []byte(metaServerInfo)):
			mark, before := len(out), n
			member(key)
			out = append(out, '{')
			inner := 0
			if !rawjson.Members(value, func(k, v []byte) bool {
				if string(k) != mcp.MetaKeyServerInfo {
					if inner > 0 {
						out = append(out, ',')
					}
					inner++
					out = append(out, '"')
					out = append(out, k...)
					out = append(out, '"', ':')
					out = append(out, v...)
				}
				return true
			}) {
				return false
			}
			if inner == 0 { // nothing left of it
				out, n = out[:mark], before
				return true
			}
			out = append(out, '}')
		default:
			member(key)
			out = append(out, value...)
		}
		return true
	})
	if !ok {
		return res
	}
	return append(out, '}')
}

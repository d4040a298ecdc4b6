package tools

import (
	"errors"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
)

// A 2026-07-28 upstream sends notifications outside a request only on a
// subscriptions/listen stream its client opened for them (the initialize
// era's GET stream is gone). A connection to one over HTTP whose
// capabilities say its lists change keeps such a stream open while it
// lives (not yet over stdio, where every line the process writes is its
// sign of life for the hung-upstream probe), so that its
// list_changed notifications reach the gateway (PoolOptions.OnNotification)
// as an initialize-era upstream's do, and from there the sessions of the
// connection's tenant.

// listenAcknowledged is the first message of a listen stream.
const listenAcknowledged = mcp.MethodNotificationSubscriptionsAcknowledged

// relistenAfter is the pause before a listen stream the upstream ended is
// opened again.
const relistenAfter = time.Second

// listenFilter returns what to listen for of an upstream with caps, and
// whether there is anything.
func listenFilter(caps mcp.ServerCapabilities) (mcp.SubscriptionFilter, bool) {
	var f mcp.SubscriptionFilter
	f.ToolsListChanged = caps.Tools != nil && caps.Tools.ListChanged
	f.PromptsListChanged = caps.Prompts != nil && caps.Prompts.ListChanged
	f.ResourcesListChanged = caps.Resources != nil && caps.Resources.ListChanged
	return f, !f.IsEmpty()
}

// listen keeps a subscriptions/listen stream open on cli, the connection's
// client of a 2026-07-28 upstream with caps, until the connection ends or
// cli is replaced; an upstream that does not know the method is not asked
// again.
func (c *Conn) listen(cli *client.Client, caps mcp.ServerCapabilities) {
	filter, ok := listenFilter(caps)
	if !ok {
		return
	}
	go func() {
		for c.ctx.Err() == nil {
			err := cli.Listen(c.ctx, filter)
			if c.ctx.Err() != nil || errors.Is(err, mcp.ErrMethodNotFound) {
				return
			}
			c.mu.Lock()
			replaced := c.client != nil && c.client != cli
			c.mu.Unlock()
			if replaced {
				return // the new client listens
			}
			if err != nil {
				c.logger.Debug("upstream_listen_ended", "error", c.scrubber.String(err.Error()))
			}
			select {
			case <-c.ctx.Done():
				return
			case <-time.After(relistenAfter):
			}
		}
	}()
}

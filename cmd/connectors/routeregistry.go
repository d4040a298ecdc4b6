package main

import (
	"github.com/connectors-gateway/connectors/tools"
	"github.com/connectors-gateway/connectors/transport"
)

// routeRegistry shows the registry to the HTTP routes, which know an
// integration by its name and category only.
type routeRegistry struct{ reg *tools.Registry }

// Integration implements transport.Registry.
func (r routeRegistry) Integration(name string) (transport.Integration, bool) {
	in, ok := r.reg.Get(name)
	return transport.Integration{Name: in.Name, Category: in.Category}, ok
}

// Integrations implements transport.Registry.
func (r routeRegistry) Integrations() []transport.Integration {
	all := r.reg.All()
	out := make([]transport.Integration, len(all))
	for i, in := range all {
		out[i] = transport.Integration{Name: in.Name, Category: in.Category}
	}
	return out
}

// Package console is the tenant console served by the gateway at
// /console: a tenant's integrations (connect, reconnect, disconnect), their
// health and usage, its API keys and MCP client configuration, and, for
// admins, every tenant. Pages are rendered on the server with html/template
// under a strict Content-Security-Policy (no script, the stylesheet served
// by the console itself). Every read and every action is an in-process
// request to the gateway's own API handler carrying the browser's session
// cookie, Origin and CSRF token: the console holds no authority of its own,
// and the API's authorization, audit and errors apply to it unchanged.
package console

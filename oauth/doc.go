// Package oauth will carry the OAuth link flow (authorize, callback, state,
// PKCE, redirect allowlist), the provider presets and the token refresher.
package oauth

// Package oauth links tenants' accounts at integration providers and keeps
// the resulting tokens alive.
//
// # Overview
//
// A [Provider] is one integration's OAuth 2.0 client: its endpoints, client
// credentials and the quirks of its token endpoint (Notion's JSON body,
// GitHub's errors answered with HTTP 200, Slack's oauth.v2.access). Every
// provider answers with the same [Token]; a failure is a [*TokenError].
//
// A [Flow] runs the link flow: Authorize builds the provider's consent URL
// with a sealed, single-use state bound to tenant, integration, redirect URI
// and PKCE verifier; Callback validates that state, exchanges the code and
// stores the credential.
//
// A [Refresher] keeps stored tokens fresh: one time-ordered schedule and a
// bounded set of workers refresh tokens before they expire; concurrent
// callers share one refresh, and the store's check-and-set makes one
// replica the winner when several race.
package oauth

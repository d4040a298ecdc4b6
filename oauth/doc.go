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
// A [Flow] runs the link flow. An agent or API caller gets a consent link
// from Begin: a sealed ID naming tenant, integration and who began it,
// which a person opens on the gateway's consent page and confirms there
// (Confirm, once). Only then is the provider's consent URL built, with a
// sealed, single-use state bound to tenant, integration, redirect URI, PKCE
// verifier and the confirming browser's binding secret (an HttpOnly
// cookie); a signed-in browser gets that URL at once from Authorize.
// Callback validates the state and the browser, exchanges the code and
// stores the credential. No provider URL the gateway hands out can be
// completed in another browser than the one it is bound to.
//
// A [Refresher] keeps stored tokens fresh: one time-ordered schedule and a
// bounded set of workers refresh tokens before they expire; concurrent
// callers share one refresh, and the store's check-and-set makes one
// replica the winner when several race.
package oauth

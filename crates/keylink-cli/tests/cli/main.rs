//! End-to-end tests of the real `keylink` binary against the real test identity provider
//! (npm `oidc-provider` over TLS), the private gnome-keyring of the test session, and a
//! fault-injecting provider for attacks a certified provider will not help with.
#![allow(clippy::unwrap_used)]

#[path = "../support/mod.rs"]
mod support;

// Linking through both redirect transports, tokens, refresh, unlink, several accounts.
mod link;
// Hostile and broken redirects: unsolicited, replayed, concurrent, mix-up, malformed.
mod redirect;
// Hostile providers: unsafe endpoints, bad discovery, forged ID tokens, odd token responses.
mod provider_faults;
// Configuration errors, usage errors and a missing keychain.
mod config;
// Provider presets exercised against a provider that behaves like the real one.
mod presets;
// Refresh under concurrency, provider faults, crashes mid-refresh.
mod lifecycle;
// Device sign-in (RFC 8628): the person on another device approves, declines or lets it expire.
mod device;
// The admin's system policy: locked providers, refused user providers, network settings.
mod policy;
// The policy against a user made for the test: untrusted policy files, proxy, KEYLINK_CONFIG.
mod policy_trust;
// Errors in one sentence, log lines on request, doctor's fixes and skipped checks.
mod messages;
// A package's URL-scheme handler shadowed by a checkout's leftovers (SECURITY 55).
mod handler;
// Keylink embedded by another app: its own identity, configuration and browser.
mod apps;
// A hostile provider (dribbling, flooding, overflowing) and hostile local users.
mod hostile;
// Credential helpers for the tools people already use: git (and more).
mod credentials;
// The token agent: answers as the keychain does, sees other processes' changes, refuses others.
mod agent;
// kubectl's exec credential plugin and docker's credential helper, driven as the tools drive them.
mod kubectl;
// Incremental consent: more scopes on link and reconnect, granted, declined or refused.
mod consent;
// Signing out at the provider on unlink (RP-Initiated Logout): the session ends, the next link signs in again.
mod signout;
// Tokens per API (RFC 8707, down-scoped refresh): each API's own audience, one refresh, gone on unlink.
mod resources;

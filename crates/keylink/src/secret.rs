//! Secret values: tokens, PKCE verifiers, state, nonces, codes and client secrets.
//!
//! Every secret lives in a type whose `Debug` prints `Name([redacted])`, which is not
//! `Serialize`, and which zeroizes its memory on drop. The value is reachable only through
//! `.secret()`, so every place that exposes one is easy to find.

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

macro_rules! secret_type {
    ($(#[$doc:meta])* $vis:vis $name:ident) => {
        $(#[$doc])*
        #[derive(Clone)]
        $vis struct $name(Zeroizing<String>);

        /// In constant time: how long a comparison takes says nothing about how much of two
        /// secrets matches.
        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
            }
        }

        impl Eq for $name {}

        impl $name {
            /// Wraps a secret value.
            #[allow(unreachable_pub, reason = "public for the public secret types")]
            pub fn new(value: impl Into<String>) -> Self {
                Self(Zeroizing::new(value.into()))
            }

            /// The secret value itself. Never log or display it.
            #[allow(unreachable_pub, reason = "public for the public secret types")]
            pub fn secret(&self) -> &str {
                &self.0
            }

            /// Compares with another value in constant time.
            #[allow(dead_code, reason = "not every secret is compared with text")]
            pub(crate) fn ct_eq(&self, other: &str) -> bool {
                self.0.as_bytes().ct_eq(other.as_bytes()).into()
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(concat!(stringify!($name), "([redacted])"))
            }
        }
    };
}

secret_type!(
    /// An OAuth 2.0 access token (RFC 6749 §1.4).
    pub AccessToken
);
secret_type!(
    /// An OAuth 2.0 refresh token (RFC 6749 §1.5).
    pub RefreshToken
);
secret_type!(
    /// An OpenID Connect ID token, still in its compact JWS form (OIDC Core §2).
    pub IdToken
);
secret_type!(
    /// A PKCE code verifier (RFC 7636 §4.1).
    pub(crate) PkceCodeVerifier
);
secret_type!(
    /// The `state` parameter binding a redirect to the flow that started it (RFC 6749 §10.12).
    pub(crate) CsrfState
);
secret_type!(
    /// The OpenID Connect `nonce` binding an ID token to the flow (OIDC Core §3.1.2.1).
    pub(crate) Nonce
);
secret_type!(
    /// An authorization code (RFC 6749 §4.1.2).
    pub(crate) AuthorizationCode
);
secret_type!(
    /// A client secret, for the few providers that demand one from desktop apps.
    pub ClientSecret
);
secret_type!(
    /// A secret value of any other kind, e.g. raw keychain contents.
    pub SecretString
);
secret_type!(
    /// A device code (RFC 8628 §3.2): whoever holds it collects the tokens once the person
    /// approves, so unlike the user code it is never shown.
    pub(crate) DeviceCode
);

#[cfg(test)]
mod tests;

//! An ID token's claims under a valid signature (OIDC Core §3.1.3.7).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keylink::fuzzing::id_token_claims(data));

//! A JWK Set (RFC 7517) and the key lookup for each allowed algorithm.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keylink::fuzzing::jwks(data));

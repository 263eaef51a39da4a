//! An ID token's JOSE header under a valid signature, or a whole compact token.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keylink::fuzzing::id_token_header(data));

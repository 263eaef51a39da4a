//! A discovery document (RFC 8414), for a plain and a multi-tenant provider.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keylink::fuzzing::discovery(data));

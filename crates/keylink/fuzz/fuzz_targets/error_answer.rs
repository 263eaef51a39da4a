//! Error answers of the token and device endpoints (RFC 6749 §5.2), and Retry-After.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keylink::fuzzing::error_answer(data));

//! A token endpoint's answer (RFC 6749 §5.1, §5.2) with the HTTP status it came with.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keylink::fuzzing::token_answer(data));

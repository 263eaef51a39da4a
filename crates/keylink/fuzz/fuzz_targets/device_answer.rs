//! A device authorization answer (RFC 8628 §3.2) with the HTTP status it came with.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keylink::fuzzing::device_answer(data));

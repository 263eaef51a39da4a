//! The redirect back from the provider, as a deep link and as a loopback request target.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keylink::fuzzing::redirect(data));

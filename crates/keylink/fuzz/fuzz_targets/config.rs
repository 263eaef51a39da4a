//! Configuration TOML: a user file, or a system policy with a user file over it.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keylink::fuzzing::config(data));

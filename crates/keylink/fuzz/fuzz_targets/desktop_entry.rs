//! A desktop entry's Exec line as doctor reads it, and an entry Keylink writes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keylink::fuzzing::desktop_entry(data));

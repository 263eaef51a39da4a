//! Test-only: a seeded mutation generator for fuzzing parsers of untrusted input (redirects,
//! token, device and discovery answers). Deterministic, so a failure reproduces.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Bytes that JSON answers are made of, with escapes and delimiters.
pub(crate) const JSON_ALPHABET: &[u8] = b"\"{}[]:,.-+eE0123456789 \\u\x00\x1b\xff&=?#%tfnl9";

/// Calls `check` with `count` mutations of the `seeds`: bytes flipped, inserted or deleted
/// (drawn from `alphabet`), huge numbers inserted and tails duplicated.
pub(crate) fn mutations(
    seeds: &[&str],
    alphabet: &[u8],
    count: usize,
    mut check: impl FnMut(&[u8]),
) {
    let mut rng = StdRng::seed_from_u64(0x006b_6579_6c69_6e6b);
    for _ in 0..count {
        let mut bytes = seeds[rng.random_range(0..seeds.len())].as_bytes().to_vec();
        for _ in 0..rng.random_range(1..6) {
            let at = rng.random_range(0..=bytes.len());
            match rng.random_range(0..5) {
                0 if at < bytes.len() => bytes[at] = alphabet[rng.random_range(0..alphabet.len())],
                1 => bytes.insert(at, alphabet[rng.random_range(0..alphabet.len())]),
                2 if at < bytes.len() => {
                    bytes.remove(at);
                }
                3 => {
                    // A huge number where a number was.
                    let digits = b"18446744073709551615999";
                    bytes.splice(at..at, digits.iter().copied());
                }
                _ => {
                    let tail = bytes[at..].to_vec();
                    bytes.extend_from_slice(&tail);
                }
            }
        }
        check(&bytes);
    }
}

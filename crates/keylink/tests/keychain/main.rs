//! The real platform keychain behind chunking and the time limit: large values stored, read
//! back, overwritten and deleted without leaving an entry behind.
#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use keylink::store::{KEYCHAIN_SERVICE, Keychain, MAX_ENTRY_BYTES, SecretStore};

/// The token store, but only inside the private keyring of `scripts/with-keyring.sh`: these
/// tests must never write to the keyring of the person running them.
fn token_store() -> std::sync::Arc<dyn SecretStore> {
    assert_eq!(
        std::env::var("KEYLINK_IN_TEST_SESSION").as_deref(),
        Ok("1"),
        "run these tests through scripts/with-keyring.sh (it gives them a keyring of their own)"
    );
    Keychain::open_for_tokens(KEYCHAIN_SERVICE).unwrap()
}

/// A key no other test run uses.
fn unique_key(name: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("test-{name}-{}-{nanos:08x}", std::process::id())
}

/// A value of `len` bytes, different for each seed.
fn value(len: usize, seed: u8) -> String {
    (0..len)
        .map(|i| char::from(b'!' + ((i * 31 + usize::from(seed) * 7 + i / 97) % 90) as u8))
        .collect()
}

/// The Keylink entries of `key` (the header and its chunks) in the keychain, as
/// (username, secret length), listed by `secret-tool` independently of Keylink.
fn entries_of(key: &str) -> Vec<(String, usize)> {
    let out = Command::new("secret-tool")
        .args(["search", "--all", "service", KEYCHAIN_SERVICE])
        .output()
        .expect("secret-tool (libsecret-tools) is installed by the test command");
    // Attributes go to stderr, unordered with stdout; but stdout has each item's label, which
    // the Secret Service store sets to `keyring:<username>@<service>`, before its secret.
    let label_suffix = format!("@{KEYCHAIN_SERVICE}");
    let chunk_prefix = format!("{key}.");
    let mut found = Vec::new();
    let mut user = None;
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        if line.starts_with('[') {
            user = None;
        } else if let Some(label) = line.strip_prefix("label = keyring:") {
            user = label.strip_suffix(label_suffix.as_str()).map(str::to_owned);
        } else if let Some(secret) = line.strip_prefix("secret = ")
            && let Some(user) = user.take()
            && (user == key || user.starts_with(&chunk_prefix))
        {
            found.push((user, secret.len()));
        }
    }
    found.sort();
    found
}

#[test]
fn a_large_value_round_trips_through_the_real_keychain_and_leaves_nothing_behind() {
    let store = token_store();
    let key = unique_key("large");
    let large = value(20_000, 1);

    store.set(&key, &large).unwrap();
    assert_eq!(store.get(&key).unwrap().unwrap().secret(), large);
    let entries = entries_of(&key);
    assert_eq!(entries.len(), 11, "a header and 10 chunks: {entries:?}");
    for (user, len) in &entries {
        assert!(*len <= MAX_ENTRY_BYTES, "{user} holds {len} bytes");
    }

    // Small, then large again: each time only the current entries remain.
    store.set(&key, "{\"v\":1}").unwrap();
    assert_eq!(store.get(&key).unwrap().unwrap().secret(), "{\"v\":1}");
    assert_eq!(entries_of(&key).len(), 1);
    let other = value(12_345, 2);
    store.set(&key, &other).unwrap();
    assert_eq!(store.get(&key).unwrap().unwrap().secret(), other);
    assert_eq!(entries_of(&key).len(), 8);

    store.delete(&key).unwrap();
    assert!(store.get(&key).unwrap().is_none());
    assert_eq!(entries_of(&key), Vec::new());
    assert!(
        Keychain::open(KEYCHAIN_SERVICE)
            .unwrap()
            .get(&key)
            .unwrap()
            .is_none()
    );
}

#[test]
fn an_entry_written_before_chunking_still_reads() {
    let store = token_store();
    let key = unique_key("legacy");
    let keychain = Keychain::open(KEYCHAIN_SERVICE).unwrap();
    keychain
        .set(&key, "{\"v\":1,\"access_token\":\"old\"}")
        .unwrap();
    assert_eq!(
        store.get(&key).unwrap().unwrap().secret(),
        "{\"v\":1,\"access_token\":\"old\"}"
    );
    store.delete(&key).unwrap();
    assert_eq!(entries_of(&key), Vec::new());
}

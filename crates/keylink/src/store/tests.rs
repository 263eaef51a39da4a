//! Chunked storage against an in-memory store with Windows' entry size limit and injected
//! write failures; time limits against a store that blocks until released.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::*;

/// Windows Credential Manager's limit on one credential blob.
const WINDOWS_BLOB_LIMIT: usize = 2560;

/// How an injected write failure behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// The Nth write is refused; later writes work (a transient error).
    Refuse,
    /// The Nth write and every later one are refused (the process died, the bus went away).
    Crash,
    /// The Nth write happens but reports an error (the reply was lost).
    Lost,
}

type Hook = Box<dyn FnOnce() + Send>;

/// A keychain in memory: entries over [`WINDOWS_BLOB_LIMIT`] are refused like Windows does,
/// and the Nth write (`set` or `delete`) can be made to fail.
#[derive(Default)]
struct MemoryStore {
    entries: Mutex<BTreeMap<String, String>>,
    /// Writes since the fault was armed, and the fault: (fails at write N, how).
    writes: AtomicUsize,
    fault: Mutex<Option<(usize, Fault)>>,
    /// Every write, in order: ("set" | "delete", key).
    log: Mutex<Vec<(&'static str, String)>>,
    /// Runs once, just before the first `get` of the given key.
    before_get: Mutex<Option<(String, Hook)>>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MemoryStore")
    }
}

impl MemoryStore {
    fn arm(&self, at: usize, fault: Fault) {
        self.writes.store(0, Ordering::SeqCst);
        *self.fault.lock().unwrap() = Some((at, fault));
    }

    /// Disarms the fault; whether it fired.
    fn disarm(&self) -> bool {
        let fired = match *self.fault.lock().unwrap() {
            Some((at, _)) => self.writes.load(Ordering::SeqCst) >= at,
            None => false,
        };
        *self.fault.lock().unwrap() = None;
        fired
    }

    /// Whether this write should fail, and whether it should happen anyway.
    fn write_fault(&self) -> Option<Fault> {
        let n = self.writes.fetch_add(1, Ordering::SeqCst) + 1;
        match *self.fault.lock().unwrap() {
            Some((at, fault)) if n == at => Some(fault),
            Some((at, Fault::Crash)) if n > at => Some(Fault::Crash),
            _ => None,
        }
    }

    fn keys(&self) -> Vec<String> {
        self.entries.lock().unwrap().keys().cloned().collect()
    }

    fn raw(&self, key: &str) -> Option<String> {
        self.entries.lock().unwrap().get(key).cloned()
    }

    fn put_raw(&self, key: &str, value: &str) {
        self.entries
            .lock()
            .unwrap()
            .insert(key.to_owned(), value.to_owned());
    }

    fn injected() -> StoreError {
        StoreError::Keychain("injected failure".into())
    }
}

impl SecretStore for MemoryStore {
    fn get(&self, key: &str) -> Result<Option<SecretString>, StoreError> {
        let hook = {
            let mut slot = self.before_get.lock().unwrap();
            match slot.take() {
                Some((k, hook)) if k == key => Some(hook),
                other => {
                    *slot = other;
                    None
                }
            }
        };
        if let Some(hook) = hook {
            hook();
        }
        Ok(self.raw(key).map(SecretString::new))
    }

    fn set(&self, key: &str, value: &str) -> Result<(), StoreError> {
        if value.len() > WINDOWS_BLOB_LIMIT {
            return Err(StoreError::Keychain(format!(
                "the secret is longer than {WINDOWS_BLOB_LIMIT} bytes"
            )));
        }
        let fault = self.write_fault();
        if matches!(fault, Some(Fault::Refuse | Fault::Crash)) {
            return Err(Self::injected());
        }
        self.log.lock().unwrap().push(("set", key.to_owned()));
        self.put_raw(key, value);
        match fault {
            Some(Fault::Lost) => Err(Self::injected()),
            _ => Ok(()),
        }
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        let fault = self.write_fault();
        if matches!(fault, Some(Fault::Refuse | Fault::Crash)) {
            return Err(Self::injected());
        }
        self.log.lock().unwrap().push(("delete", key.to_owned()));
        self.entries.lock().unwrap().remove(key);
        match fault {
            Some(Fault::Lost) => Err(Self::injected()),
            _ => Ok(()),
        }
    }
}

fn chunked() -> (Arc<MemoryStore>, Chunked<Arc<MemoryStore>>) {
    let memory = Arc::new(MemoryStore::default());
    (memory.clone(), Chunked::new(memory))
}

/// A value of `len` bytes that differs from other seeds' at every chunk.
fn value(len: usize, seed: char) -> String {
    let alphabet: Vec<char> = format!("{seed}0123456789abcdefghijklmnopqrstuvwxyz{{}}\":,")
        .chars()
        .collect();
    (0..len)
        .map(|i| alphabet[(i * 7 + i / 13) % alphabet.len()])
        .collect()
}

fn read(store: &impl SecretStore, key: &str) -> Option<String> {
    store.get(key).unwrap().map(|v| v.secret().to_owned())
}

/// Chunk keys of `key` in the memory store.
fn chunk_keys(memory: &MemoryStore, key: &str) -> Vec<String> {
    let prefix = format!("{key}.");
    memory
        .keys()
        .into_iter()
        .filter(|k| k.starts_with(&prefix))
        .collect()
}

/// Asserts the memory store holds exactly `key` and the chunks its header names.
fn assert_no_orphans(memory: &MemoryStore, key: &str) {
    let chunks = chunk_keys(memory, key);
    match memory.raw(key) {
        None => assert!(chunks.is_empty(), "orphans: {chunks:?}"),
        Some(entry) if entry.starts_with("kl1:i:") => {
            assert!(chunks.is_empty(), "orphans: {chunks:?}")
        }
        Some(entry) => {
            let fields: Vec<&str> = entry["kl1:c:".len()..].split(':').collect();
            let expected: Vec<String> = (0..fields[1].parse::<usize>().unwrap())
                .map(|i| format!("{key}.{}.{i}", fields[0]))
                .collect();
            let mut expected = expected;
            expected.sort();
            assert_eq!(chunks, expected);
        }
    }
    assert_eq!(memory.keys().len(), 1 + chunks.len(), "{:?}", memory.keys());
}

#[test]
fn a_large_value_round_trips_in_chunks_under_the_size_limit() {
    let (memory, store) = chunked();
    let big = value(20_000, 'A');
    store.set("acct", &big).unwrap();
    assert_eq!(read(&store, "acct").as_deref(), Some(big.as_str()));
    let header = memory.raw("acct").unwrap();
    assert!(header.starts_with("kl1:c:"), "{header}");
    assert_eq!(chunk_keys(&memory, "acct").len(), 10);
    for key in memory.keys() {
        assert!(memory.raw(&key).unwrap().len() <= MAX_ENTRY_BYTES, "{key}");
    }
    assert_no_orphans(&memory, "acct");
}

#[test]
fn a_small_value_is_one_inline_entry() {
    let (memory, store) = chunked();
    store.set("acct", "{\"v\":1}").unwrap();
    assert_eq!(memory.keys(), vec!["acct".to_owned()]);
    assert_eq!(memory.raw("acct").unwrap(), "kl1:i:{\"v\":1}");
    assert_eq!(read(&store, "acct").as_deref(), Some("{\"v\":1}"));
}

#[test]
fn values_around_every_boundary_round_trip() {
    let inline_max = MAX_ENTRY_BYTES - "kl1:i:".len();
    for len in [
        0,
        1,
        inline_max - 1,
        inline_max,
        inline_max + 1,
        MAX_ENTRY_BYTES,
        MAX_ENTRY_BYTES + 1,
        2 * MAX_ENTRY_BYTES,
        2 * MAX_ENTRY_BYTES + 1,
    ] {
        let (memory, store) = chunked();
        let v = value(len, 'B');
        store.set("acct", &v).unwrap();
        assert_eq!(read(&store, "acct"), Some(v), "length {len}");
        assert_eq!(
            memory.raw("acct").unwrap().starts_with("kl1:i:"),
            len <= inline_max,
            "length {len}"
        );
        assert_no_orphans(&memory, "acct");
    }
}

#[test]
fn chunks_never_split_a_character() {
    let (memory, store) = chunked();
    // 1-, 2-, 3- and 4-byte characters, so chunk ends fall inside characters.
    let v: String = "aé€😀".repeat(2_000);
    store.set("acct", &v).unwrap();
    assert_eq!(read(&store, "acct"), Some(v));
    for key in memory.keys() {
        assert!(memory.raw(&key).unwrap().len() <= MAX_ENTRY_BYTES);
    }
}

#[test]
fn overwriting_large_small_large_leaves_no_orphan_chunks() {
    let (memory, store) = chunked();
    for (i, v) in [
        value(20_000, 'C'),
        value(100, 'D'),
        value(15_000, 'E'),
        value(25_000, 'F'),
        value(5, 'G'),
    ]
    .into_iter()
    .enumerate()
    {
        store.set("acct", &v).unwrap();
        assert_eq!(read(&store, "acct"), Some(v), "write {i}");
        assert_no_orphans(&memory, "acct");
    }
    store.delete("acct").unwrap();
    assert!(memory.keys().is_empty(), "{:?}", memory.keys());
}

#[test]
fn other_keys_are_left_alone() {
    let (memory, store) = chunked();
    store.set("a", &value(9_000, 'H')).unwrap();
    store.set("ab", &value(9_000, 'I')).unwrap();
    store.set("a", &value(7_000, 'J')).unwrap();
    store.delete("a").unwrap();
    assert_eq!(read(&store, "ab"), Some(value(9_000, 'I')));
    assert_no_orphans(&memory, "ab");
}

/// Overwrites `old` with `new`, failing the Nth write for every N the overwrite reaches, and
/// checks what a reader sees afterwards.
fn check_every_failure_point(old: Option<&str>, new: &str, fault: Fault) {
    let new_chunks = if new.len() + "kl1:i:".len() <= MAX_ENTRY_BYTES {
        0
    } else {
        new.len().div_ceil(MAX_ENTRY_BYTES)
    };
    // Writes 1..=new_chunks are chunks, the next one is the header.
    let header_write = new_chunks + 1;
    for n in 1.. {
        let (memory, store) = chunked();
        if let Some(old) = old {
            store.set("acct", old).unwrap();
        }
        let before = memory.keys();
        memory.arm(n, fault);
        let result = store.set("acct", new);
        if !memory.disarm() {
            // The overwrite finished before write N: every point has been tried.
            assert!(n > header_write, "{fault:?}: only {n} writes");
            break;
        }
        let now = read(&store, "acct");
        let what = format!(
            "{fault:?} at write {n} of overwriting {:?}",
            old.map(str::len)
        );
        if result.is_ok() || (n == header_write && fault == Fault::Lost) || n > header_write {
            assert_eq!(now.as_deref(), Some(new), "{what}: {result:?}");
        } else {
            assert_eq!(now.as_deref(), old, "{what}");
        }
        if n > header_write && fault != Fault::Crash {
            // Only cleaning up the old chunks failed.
            assert!(result.is_ok(), "{what}: {result:?}");
        }
        if n <= header_write && fault != Fault::Crash {
            assert!(result.is_err() || fault == Fault::Lost, "{what}");
            // What the failed write left behind was cleaned up.
            if result.is_err() {
                assert_eq!(memory.keys(), before, "{what}");
            }
        }
        // Whatever happened, the value can be overwritten and deleted afterwards.
        store.set("acct", "{}").unwrap();
        assert_eq!(read(&store, "acct").as_deref(), Some("{}"), "{what}");
        store.delete("acct").unwrap();
        assert_eq!(read(&store, "acct"), None, "{what}");
    }
}

#[test]
fn a_torn_overwrite_reads_as_the_old_or_the_new_value_never_a_mix() {
    let large_old = value(20_000, 'K');
    let large_new = value(18_000, 'L');
    let small_old = value(300, 'M');
    let small_new = value(200, 'N');
    for fault in [Fault::Refuse, Fault::Crash, Fault::Lost] {
        check_every_failure_point(Some(&large_old), &large_new, fault);
        check_every_failure_point(Some(&small_old), &large_new, fault);
        check_every_failure_point(Some(&large_old), &small_new, fault);
        check_every_failure_point(Some(&small_old), &small_new, fault);
    }
}

#[test]
fn a_failed_first_write_reads_as_absent() {
    let big = value(20_000, 'O');
    for fault in [Fault::Refuse, Fault::Crash] {
        for n in 1..=11 {
            let (memory, store) = chunked();
            memory.arm(n, fault);
            assert!(store.set("acct", &big).is_err(), "{fault:?} at {n}");
            memory.disarm();
            assert_eq!(read(&store, "acct"), None, "{fault:?} at {n}");
            if fault == Fault::Refuse {
                assert!(memory.keys().is_empty(), "{fault:?} at {n}");
            }
        }
    }
}

#[test]
fn a_tampered_or_missing_chunk_is_corrupt_not_data() {
    let big = value(20_000, 'P');
    let corrupt = |store: &Chunked<Arc<MemoryStore>>| match store.get("acct") {
        Err(e @ StoreError::Corrupt(_)) => {
            let shown = format!("{e} {e:?}");
            assert!(
                shown.contains("acct") && !shown.contains(&big[..40]),
                "{shown}"
            );
        }
        other => panic!("expected Corrupt, got {other:?}"),
    };

    let (memory, store) = chunked();
    store.set("acct", &big).unwrap();
    let third = chunk_keys(&memory, "acct")[3].clone();
    let mut piece = memory.raw(&third).unwrap();
    let flipped = if piece.starts_with('x') { "y" } else { "x" };
    piece.replace_range(0..1, flipped);
    memory.put_raw(&third, &piece);
    corrupt(&store);

    // A piece of the right digest but the wrong length.
    let (memory, store) = chunked();
    store.set("acct", &big).unwrap();
    let first = chunk_keys(&memory, "acct")[0].clone();
    let piece = memory.raw(&first).unwrap();
    memory.put_raw(&first, &format!("{piece}z"));
    corrupt(&store);

    let (memory, store) = chunked();
    store.set("acct", &big).unwrap();
    let last = chunk_keys(&memory, "acct")[9].clone();
    memory.entries.lock().unwrap().remove(&last);
    corrupt(&store);

    // Damaged or unknown headers.
    for header in [
        "kl1:c:",
        "kl1:c:0123456789abcdef:10:20000",
        "kl1:c:0123456789abcdef:0:0:",
        "kl1:x:whatever",
        "kl2:something newer",
    ] {
        let (memory, store) = chunked();
        memory.put_raw("acct", header);
        corrupt(&store);
        // A damaged entry can still be replaced and deleted.
        store.set("acct", "{}").unwrap();
        assert_eq!(read(&store, "acct").as_deref(), Some("{}"));
        memory.put_raw("acct", header);
        store.delete("acct").unwrap();
        assert!(memory.keys().is_empty());
    }
}

#[test]
fn an_entry_from_before_the_format_reads_as_it_is() {
    let (memory, store) = chunked();
    memory.put_raw("acct", "{\"v\":1,\"access_token\":\"x\"}");
    assert_eq!(
        read(&store, "acct").as_deref(),
        Some("{\"v\":1,\"access_token\":\"x\"}")
    );
    store.set("acct", &value(10_000, 'Q')).unwrap();
    assert_no_orphans(&memory, "acct");
}

#[test]
fn delete_removes_the_header_before_the_chunks() {
    let (memory, store) = chunked();
    store.set("acct", &value(20_000, 'R')).unwrap();
    memory.log.lock().unwrap().clear();
    store.delete("acct").unwrap();
    let log = memory.log.lock().unwrap().clone();
    assert_eq!(log[0], ("delete", "acct".to_owned()));
    assert_eq!(log.len(), 11);
    assert!(log.iter().all(|(op, _)| *op == "delete"));
    assert!(memory.keys().is_empty());
    assert_eq!(read(&store, "acct"), None);
    // Deleting what is not there succeeds.
    store.delete("acct").unwrap();
}

#[test]
fn a_reader_follows_a_concurrent_overwrite() {
    let (memory, store) = chunked();
    let old = value(20_000, 'S');
    let new = value(20_000, 'T');
    store.set("acct", &old).unwrap();
    let first_chunk = chunk_keys(&memory, "acct")
        .into_iter()
        .find(|k| k.ends_with(".0"))
        .unwrap();
    // Another writer replaces the value (and deletes the old chunks) after the reader has
    // read the old header, just before it reads the first old chunk.
    let writer = Chunked::new(memory.clone());
    let replacement = new.clone();
    *memory.before_get.lock().unwrap() = Some((
        first_chunk,
        Box::new(move || writer.set("acct", &replacement).unwrap()),
    ));
    assert_eq!(read(&store, "acct"), Some(new));
}

#[test]
fn a_value_too_large_for_any_keychain_is_refused_up_front() {
    let (memory, store) = chunked();
    let huge = "x".repeat(MAX_VALUE_BYTES + 1);
    assert!(matches!(
        store.set("acct", &huge),
        Err(StoreError::TooLarge { .. })
    ));
    assert!(memory.keys().is_empty());
}

/// A store whose every operation blocks until the test opens the gate.
#[derive(Debug, Default)]
struct GateStore {
    open: Mutex<bool>,
    opened: Condvar,
    entered: AtomicUsize,
}

impl GateStore {
    fn pass(&self) {
        self.entered.fetch_add(1, Ordering::SeqCst);
        let open = self.open.lock().unwrap();
        drop(self.opened.wait_while(open, |open| !*open).unwrap());
    }

    fn release(&self) {
        *self.open.lock().unwrap() = true;
        self.opened.notify_all();
    }
}

impl SecretStore for GateStore {
    fn get(&self, _key: &str) -> Result<Option<SecretString>, StoreError> {
        self.pass();
        Ok(Some(SecretString::new("behind the gate")))
    }

    fn set(&self, _key: &str, _value: &str) -> Result<(), StoreError> {
        self.pass();
        Ok(())
    }

    fn delete(&self, _key: &str) -> Result<(), StoreError> {
        self.pass();
        Ok(())
    }
}

#[test]
fn a_keychain_call_that_blocks_times_out_and_later_calls_recover() {
    let gate = Arc::new(GateStore::default());
    let timeout = Duration::from_millis(300);
    let store = Timed::new(gate.clone(), timeout);

    let started = Instant::now();
    let err = store.get("acct").unwrap_err();
    assert!(matches!(err, StoreError::Timeout { after } if after == timeout));
    assert!(started.elapsed() < Duration::from_secs(5));
    let message = format!("{err}; {}", err.remedy().unwrap_or_default());
    for part in ["did not answer", "locked", "unlock it", "try again"] {
        assert!(message.contains(part), "{message}");
    }

    // While the first call still hangs, the next one waits for it instead of adding a thread.
    let started = Instant::now();
    assert!(matches!(
        store.set("acct", "v"),
        Err(StoreError::Timeout { .. })
    ));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(gate.entered.load(Ordering::SeqCst), 1);

    // Once the keychain answers (the user unlocked it), calls go through again.
    gate.release();
    let deadline = Instant::now() + Duration::from_secs(10);
    let value = loop {
        match store.get("acct") {
            Ok(value) => break value,
            Err(StoreError::Timeout { .. }) if Instant::now() < deadline => continue,
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(value.unwrap().secret(), "behind the gate");
    store.delete("acct").unwrap();
}

#[test]
fn timed_passes_results_and_errors_through() {
    let memory = Arc::new(MemoryStore::default());
    let store = Timed::new(Chunked::new(memory.clone()), Duration::from_secs(10));
    let big = value(20_000, 'U');
    store.set("acct", &big).unwrap();
    assert_eq!(read(&store, "acct"), Some(big));
    memory.arm(1, Fault::Refuse);
    assert!(matches!(store.delete("acct"), Err(StoreError::Keychain(_))));
    memory.disarm();
    store.delete("acct").unwrap();
    assert_eq!(read(&store, "acct"), None);
    assert!(memory.keys().is_empty());
}

#[derive(Debug)]
struct PanickingStore;

impl SecretStore for PanickingStore {
    fn get(&self, _key: &str) -> Result<Option<SecretString>, StoreError> {
        panic!("keychain library bug");
    }

    fn set(&self, _key: &str, _value: &str) -> Result<(), StoreError> {
        Ok(())
    }

    fn delete(&self, _key: &str) -> Result<(), StoreError> {
        Ok(())
    }
}

#[test]
fn a_panicking_keychain_call_is_an_error_not_a_hang() {
    let store = Timed::new(PanickingStore, Duration::from_secs(10));
    let started = Instant::now();
    assert!(matches!(store.get("acct"), Err(StoreError::Keychain(_))));
    assert!(started.elapsed() < Duration::from_secs(5));
    store.set("acct", "v").unwrap();
}

#[test]
fn opening_a_keychain_that_hangs_times_out() {
    let gate = Arc::new(GateStore::default());
    let blocked = gate.clone();
    let result = timed::run_with_timeout(Duration::from_millis(100), move || {
        blocked.pass();
        Ok(())
    });
    assert!(matches!(result, Err(StoreError::Timeout { .. })));
    gate.release();
}

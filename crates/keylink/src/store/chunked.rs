//! Values of any size in keychains that cap the size of an entry (Windows Credential Manager:
//! 2560 bytes). Small values stay inline under their key; larger ones become chunks of one
//! generation, named by a header written last, so a torn write never reads as a mix.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::{SecretStore, StoreError};
use crate::secret::SecretString;

/// The largest entry [`Chunked`] writes, header included: well under the 2560 bytes Windows
/// Credential Manager allows for one credential blob.
pub const MAX_ENTRY_BYTES: usize = 2000;

/// The most chunks one value may have; also bounds what a reader trusts a header to say.
const MAX_CHUNKS: usize = 1024;

/// The largest value [`Chunked`] stores (about 2 MB; a token set is a few KB).
pub const MAX_VALUE_BYTES: usize = MAX_CHUNKS * MAX_ENTRY_BYTES;

/// Starts an entry holding the whole value.
const INLINE_TAG: &str = "kl1:i:";
/// Starts a header naming the chunks that hold the value.
const CHUNKED_TAG: &str = "kl1:c:";

/// How many times a reader starts over when a concurrent writer replaced the value under it.
const READ_ATTEMPTS: usize = 5;

/// A [`SecretStore`] that keeps every entry of the store it wraps under [`MAX_ENTRY_BYTES`],
/// whatever the size of the value, and makes overwrites atomic for readers.
///
/// On-keychain format, version 1 (all entries under the wrapped store's service):
///
/// - a value of at most `MAX_ENTRY_BYTES - 6` bytes: one entry, `<key>` = `kl1:i:<value>`;
/// - a larger value: chunks `<key>.<generation>.<i>` (`i` from 0) holding consecutive pieces
///   of at most `MAX_ENTRY_BYTES` bytes, split between characters, and the header
///   `<key>` = `kl1:c:<generation>:<chunk count>:<value length>:<SHA-256 of the value, hex>`,
///   where the generation is 16 random hex digits, fresh for every write;
/// - an entry without a `kl<version>:` tag was written before this format and is read as it is.
///
/// A write puts the chunks first, the header last, then deletes the previous generation's
/// chunks (best effort). A reader follows the header to its generation and checks the digest.
/// So a write torn at any point reads as the old value (or as absent when there was none), and
/// a missing or altered chunk is [`StoreError::Corrupt`], never data.
#[derive(Debug)]
pub struct Chunked<S> {
    inner: S,
}

/// The header of a chunked value. No `Debug`: its digest is derived from the secret.
struct Header {
    generation: String,
    count: usize,
    len: usize,
    digest: [u8; 32],
}

/// What the entry under a key holds.
enum Stored {
    /// The value itself.
    Value(SecretString),
    /// A header naming the chunks.
    Chunks(Header),
}

impl<S: SecretStore> Chunked<S> {
    /// Wraps `inner`, whose entries then stay under [`MAX_ENTRY_BYTES`].
    pub fn new(inner: S) -> Self {
        Self { inner }
    }

    /// The entry under `key`, parsed.
    fn read(&self, key: &str) -> Result<Option<Stored>, StoreError> {
        self.inner
            .get(key)?
            .map(|raw| parse_entry(key, raw))
            .transpose()
    }

    /// The header under `key`, for finding chunks to delete. A damaged entry has none: it can
    /// still be overwritten or deleted.
    fn current_header(&self, key: &str) -> Result<Option<Header>, StoreError> {
        match self.read(key) {
            Ok(Some(Stored::Chunks(header))) => Ok(Some(header)),
            Ok(_) | Err(StoreError::Corrupt(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The value the chunks named by `header` add up to, or `None` when one is missing or
    /// they do not match the header (damage, or a concurrent writer replaced them).
    fn read_chunks(&self, key: &str, header: &Header) -> Result<Option<SecretString>, StoreError> {
        // Exactly the announced size, so the buffer never reallocates and leaves no copy behind.
        let mut value = Zeroizing::new(String::with_capacity(header.len));
        for i in 0..header.count {
            let piece = match self.inner.get(&chunk_key(key, &header.generation, i)) {
                Ok(Some(piece)) => piece,
                Ok(None) | Err(StoreError::Corrupt(_)) => return Ok(None),
                Err(e) => return Err(e),
            };
            if value.len() + piece.secret().len() > header.len {
                return Ok(None);
            }
            value.push_str(piece.secret());
        }
        let digest = Sha256::digest(value.as_bytes());
        if value.len() != header.len || !bool::from(digest[..].ct_eq(&header.digest[..])) {
            return Ok(None);
        }
        Ok(Some(SecretString::new(std::mem::take(&mut *value))))
    }

    /// Stores `value` as a single inline entry.
    fn write_inline(&self, key: &str, value: &str) -> Result<(), StoreError> {
        let mut entry = Zeroizing::new(String::with_capacity(INLINE_TAG.len() + value.len()));
        entry.push_str(INLINE_TAG);
        entry.push_str(value);
        match self.inner.set(key, &entry) {
            Ok(()) => Ok(()),
            // A store may fail after it wrote (a lost reply): then the write happened.
            Err(e) => match self.inner.get(key) {
                Ok(Some(now)) if now.ct_eq(&entry) => Ok(()),
                _ => Err(e),
            },
        }
    }

    /// Stores `value` as chunks of a new generation, then the header naming them.
    fn write_chunks(&self, key: &str, value: &str) -> Result<(), StoreError> {
        let generation = new_generation();
        let pieces = split(value, MAX_ENTRY_BYTES);
        for (i, piece) in pieces.iter().enumerate() {
            if let Err(e) = self.inner.set(&chunk_key(key, &generation, i), piece) {
                // Nothing names this generation yet; the failed chunk itself may have landed.
                self.discard_chunks(key, &generation, i + 1);
                return Err(e);
            }
        }
        let header = Header {
            generation,
            count: pieces.len(),
            len: value.len(),
            digest: Sha256::digest(value.as_bytes()).into(),
        };
        if let Err(e) = self.inner.set(key, &header.encode()) {
            match self.read(key) {
                // The reply was lost but the header landed: the write is complete.
                Ok(Some(Stored::Chunks(now))) if now.generation == header.generation => {}
                Ok(_) | Err(StoreError::Corrupt(_)) => {
                    self.discard_chunks(key, &header.generation, header.count);
                    return Err(e);
                }
                // Unknown whether the header landed: keep the chunks it may name.
                Err(_) => return Err(e),
            }
        }
        Ok(())
    }

    /// Deletes chunks nothing names any more. Failing leaves unreachable entries behind, which
    /// is worth a warning but not worth failing an operation that has otherwise succeeded.
    fn discard_chunks(&self, key: &str, generation: &str, count: usize) {
        let mut failures = 0;
        let mut last = None;
        for i in 0..count {
            if let Err(e) = self.inner.delete(&chunk_key(key, generation, i)) {
                failures += 1;
                last = Some(e);
            }
        }
        if let Some(error) = last {
            tracing::warn!(
                key,
                generation,
                failures,
                %error,
                "could not delete unused keychain chunks"
            );
        }
    }
}

impl<S: SecretStore> SecretStore for Chunked<S> {
    fn get(&self, key: &str) -> Result<Option<SecretString>, StoreError> {
        // The generation whose chunks did not add up on the previous attempt.
        let mut failed: Option<String> = None;
        for _ in 0..READ_ATTEMPTS {
            let header = match self.read(key)? {
                None => return Ok(None),
                Some(Stored::Value(value)) => return Ok(Some(value)),
                Some(Stored::Chunks(header)) => header,
            };
            if failed.as_deref() == Some(header.generation.as_str()) {
                // Still the same header, still bad chunks: damaged, not a concurrent writer.
                break;
            }
            match self.read_chunks(key, &header)? {
                Some(value) => return Ok(Some(value)),
                None => {
                    tracing::debug!(
                        key,
                        "keychain chunks did not match their header; reading again"
                    );
                    failed = Some(header.generation);
                }
            }
        }
        Err(StoreError::Corrupt(key.to_owned()))
    }

    fn set(&self, key: &str, value: &str) -> Result<(), StoreError> {
        if value.len() > MAX_VALUE_BYTES {
            return Err(StoreError::TooLarge {
                bytes: value.len(),
                max: MAX_VALUE_BYTES,
            });
        }
        let previous = self.current_header(key)?;
        if INLINE_TAG.len() + value.len() <= MAX_ENTRY_BYTES {
            self.write_inline(key, value)?;
        } else {
            self.write_chunks(key, value)?;
        }
        if let Some(old) = previous {
            self.discard_chunks(key, &old.generation, old.count);
        }
        Ok(())
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        let previous = self.current_header(key)?;
        // The header first: from here on readers see no value, not a partial one.
        self.inner.delete(key)?;
        if let Some(old) = previous {
            self.discard_chunks(key, &old.generation, old.count);
        }
        Ok(())
    }
}

impl Header {
    fn encode(&self) -> String {
        let digest: String = self.digest.iter().map(|b| format!("{b:02x}")).collect();
        format!(
            "{CHUNKED_TAG}{}:{}:{}:{digest}",
            self.generation, self.count, self.len
        )
    }

    /// Parses what follows [`CHUNKED_TAG`]; `None` when anything is off.
    fn parse(text: &str) -> Option<Self> {
        let mut fields = text.split(':');
        let generation = fields.next().filter(|g| g.len() == 16 && is_lower_hex(g))?;
        let count = fields.next().and_then(parse_decimal)?;
        let len = fields.next().and_then(parse_decimal)?;
        let digest = fields.next().and_then(parse_digest)?;
        if fields.next().is_some()
            || !(1..=MAX_CHUNKS).contains(&count)
            || len < count
            || len > count * MAX_ENTRY_BYTES
        {
            return None;
        }
        Some(Self {
            generation: generation.to_owned(),
            count,
            len,
            digest,
        })
    }
}

/// Parses the entry under `key`.
fn parse_entry(key: &str, raw: SecretString) -> Result<Stored, StoreError> {
    let text = raw.secret();
    if let Some(value) = text.strip_prefix(INLINE_TAG) {
        return Ok(Stored::Value(SecretString::new(value)));
    }
    if let Some(header) = text.strip_prefix(CHUNKED_TAG) {
        return Header::parse(header)
            .map(Stored::Chunks)
            .ok_or_else(|| StoreError::Corrupt(key.to_owned()));
    }
    if has_version_tag(text) {
        // Another version of this format (or a damaged version 1 tag): not data we can use.
        return Err(StoreError::Corrupt(key.to_owned()));
    }
    // Written before entries had a tag (a token set is JSON, starting with `{`).
    Ok(Stored::Value(raw))
}

/// Whether `text` starts with `kl<digits>:`.
fn has_version_tag(text: &str) -> bool {
    let Some(rest) = text.strip_prefix("kl") else {
        return false;
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    digits > 0 && rest.as_bytes().get(digits) == Some(&b':')
}

fn chunk_key(key: &str, generation: &str, index: usize) -> String {
    format!("{key}.{generation}.{index}")
}

/// 64 random bits, so two writes (even from two processes) never share chunk names.
fn new_generation() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// `value` in consecutive pieces of at most `max` bytes (at least 4), each ending on a
/// character boundary, since entries are strings.
fn split(value: &str, max: usize) -> Vec<&str> {
    let mut pieces = Vec::with_capacity(value.len().div_ceil(max));
    let mut rest = value;
    while !rest.is_empty() {
        let mut end = max.min(rest.len());
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        let (piece, tail) = rest.split_at(end);
        pieces.push(piece);
        rest = tail;
    }
    pieces
}

fn is_lower_hex(text: &str) -> bool {
    text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn parse_decimal(text: &str) -> Option<usize> {
    if text.is_empty() || text.len() > 12 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn parse_digest(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 || !is_lower_hex(hex) {
        return None;
    }
    let mut digest = [0u8; 32];
    for (i, byte) in digest.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(digest)
}

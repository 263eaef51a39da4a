//! Text from outside (providers, the network, the environment) made safe to show: the ground
//! floor every other module may use, importing nothing of the crate.

/// The longest scope Keylink sends. RFC 6749 sets no limit; this keeps a mistyped argument
/// (a pasted token, say) out of the request.
pub(crate) const MAX_SCOPE_LEN: usize = 256;

/// True when `scope` is a scope-token of RFC 6749 §3.3 (`%x21 / %x23-5B / %x5D-7E`) of at
/// most [`MAX_SCOPE_LEN`] characters: the one rule for scopes asked for at a sign-in and for
/// those a configuration names.
pub(crate) fn is_scope_token(scope: &str) -> bool {
    !scope.is_empty()
        && scope.len() <= MAX_SCOPE_LEN
        && scope
            .bytes()
            .all(|b| matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E))
}

/// Turns provider-supplied text into short, plain, printable text (SECURITY 39): control
/// characters (C0, DEL, C1, so every terminal escape sequence loses its ESC/CSI/OSC byte) and
/// bidirectional overrides and isolates (Trojan Source, CVE-2021-42574) dropped, markup
/// characters replaced, length capped.
pub(crate) fn printable(text: &str, max: usize) -> String {
    text.chars()
        .filter(|c| !c.is_control() && !is_bidi_control(*c))
        .map(|c| {
            if matches!(c, '<' | '>' | '"' | '`') {
                '\''
            } else {
                c
            }
        })
        .take(max)
        .collect()
}

/// Unicode's explicit directional formatting characters (UAX #9 §2): they reorder how the
/// text around them is shown.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// A span as words: "a minute", "5 minutes", "90 seconds".
pub(crate) fn duration_words(span: std::time::Duration) -> String {
    match span.as_secs() {
        60 => "a minute".to_owned(),
        s if s > 0 && s % 60 == 0 => format!("{} minutes", s / 60),
        1 => "a second".to_owned(),
        s => format!("{s} seconds"),
    }
}

#[cfg(test)]
mod tests;

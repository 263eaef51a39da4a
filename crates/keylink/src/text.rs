//! Text from outside (providers, the network, the environment) made safe to show: the ground
//! floor every other module may use, importing nothing of the crate.

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

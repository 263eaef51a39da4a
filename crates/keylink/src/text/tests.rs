use std::time::Duration;

use super::*;

#[test]
fn provider_error_text_is_made_plain() {
    let shown = printable("<script>alert(1)</script>\u{7}done", 300);
    assert!(!shown.contains('<') && !shown.contains('>'));
    assert!(!shown.contains('\u{7}'));
}

#[test]
fn provider_text_loses_escapes_and_bidi_overrides() {
    // SECURITY 39: an OSC 52 clipboard write, a screen clear, a C1 CSI and a right-to-left
    // override.
    let hostile = "\u{1b}]52;c;aGk=\u{7}\u{1b}[2Jmal\u{202e}lory\u{9b}1m\u{2066}x\u{2069}";
    let clean = printable(hostile, 200);
    assert_eq!(clean, "]52;c;aGk=[2Jmallory1mx");
    assert_eq!(printable("Zoë <b>", 200), "Zoë 'b'");
}

#[test]
fn spans_read_as_words() {
    assert_eq!(duration_words(Duration::from_secs(300)), "5 minutes");
    assert_eq!(duration_words(Duration::from_secs(60)), "a minute");
    assert_eq!(duration_words(Duration::from_secs(90)), "90 seconds");
    assert_eq!(duration_words(Duration::from_secs(1)), "a second");
    assert_eq!(duration_words(Duration::from_millis(500)), "0 seconds");
}

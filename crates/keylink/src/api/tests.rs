use super::*;

fn redacted(text: &str, secret: &str) -> String {
    String::from_utf8(redact(text.as_bytes(), &[secret.as_bytes()])).unwrap()
}

#[test]
fn an_echoed_token_is_redacted_from_the_body() {
    assert_eq!(
        redacted("{\"seen\":\"tok-1\",\"again\":\"tok-1\"}", "tok-1"),
        "{\"seen\":\"[redacted]\",\"again\":\"[redacted]\"}"
    );
    assert_eq!(redacted("nothing here", "tok-1"), "nothing here");
}

#[test]
fn a_token_written_escaped_is_redacted_in_every_form() {
    let token = "ab/c+d=";
    for written in [
        r"ab\/c+d=",
        r"\u0061\u0062\u002F\u0063\u002b\u0064\u003d",
        r"a\u0062\/c\u002Bd=",
        "ab%2Fc%2Bd%3D",
        "ab%2fc+d%3d",
    ] {
        let text = format!("{{\"auth\":\"Bearer {written}\"}}");
        assert_eq!(
            redacted(&text, token),
            "{\"auth\":\"Bearer [redacted]\"}",
            "{written}"
        );
        assert!(contains_secret(text.as_bytes(), &[token.as_bytes()]));
    }
    // A JSON string the token is only a part of is redacted where it is, and a near miss
    // is left alone.
    assert_eq!(redacted(r"xab\/c+d=y", token), "x[redacted]y");
    assert_eq!(redacted(r"ab\/c+d", token), r"ab\/c+d");
    assert_eq!(redacted(r"\u00", token), r"\u00");
    assert!(!contains_secret(br"ab\/c+e=", &[token.as_bytes()]));
}

#[test]
fn a_decompression_bomb_is_refused_at_the_cap() {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&vec![0u8; 4 * MAX_BODY_BYTES]).unwrap();
    let bomb = gz.finish().unwrap();
    assert!(bomb.len() < 64 * 1024, "{}", bomb.len());
    let refused = decode(&bomb, Encoding::Gzip).unwrap_err();
    assert!(
        refused.to_string().contains("larger than 1 MiB"),
        "{refused}"
    );
    assert!(decode(b"not gzip", Encoding::Gzip).is_err());
}

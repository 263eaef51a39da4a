use super::*;

#[test]
fn rfc7636_appendix_b_vector() {
    let verifier = PkceCodeVerifier::new("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
    assert_eq!(
        verifier.s256_challenge(),
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    );
}

#[test]
fn ten_thousand_verifiers_are_well_formed_and_unique() {
    let mut seen = std::collections::HashSet::new();
    for _ in 0..10_000 {
        let v = PkceCodeVerifier::generate();
        let s = v.secret();
        assert!((43..=128).contains(&s.len()), "{}", s.len());
        assert!(
            s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c)),
            "verifier outside the unreserved set"
        );
        assert!(seen.insert(s.to_owned()), "duplicate verifier");
    }
}

#[test]
fn a_flow_claimed_by_a_process_that_crashed_is_deleted() {
    // Its file holds the verifier; a live claimer removes its file within microseconds.
    let dir = tempfile::tempdir().unwrap();
    let flows = PendingFlows::new(dir.path());
    crate::store::create_private_dir(&flows.dir).unwrap();
    let orphan = flows.dir.join("abc.claimed-4242");
    let fresh = flows.dir.join("def.claimed-4243");
    std::fs::write(&orphan, "{}").unwrap();
    std::fs::write(&fresh, "{}").unwrap();
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(120);
    std::fs::File::options()
        .write(true)
        .open(&orphan)
        .unwrap()
        .set_modified(old)
        .unwrap();
    flows.prune(0);
    assert!(!orphan.exists(), "the orphan was deleted");
    assert!(fresh.exists(), "a claim in progress is left alone");
}

#[test]
fn state_and_nonce_carry_at_least_128_bits() {
    // 32 random bytes in base64url: 43 characters of 6 bits each.
    assert_eq!(CsrfState::generate().secret().len(), 43);
    assert_eq!(Nonce::generate().secret().len(), 43);
    assert_ne!(CsrfState::generate(), CsrfState::generate());
}

/// A reconnect asks again for everything granted before, then the new ones, each once.
#[test]
fn requested_scopes_are_configured_then_granted_then_extra_each_once() {
    let v = |s: &[&str]| s.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    assert_eq!(
        requested_scopes(
            &v(&["openid", "email"]),
            &v(&["email", "contacts", "openid"]),
            &v(&["calendar", "contacts", "calendar"])
        ),
        v(&["openid", "email", "contacts", "calendar"])
    );
    assert_eq!(requested_scopes(&v(&["read"]), &[], &[]), v(&["read"]));
}

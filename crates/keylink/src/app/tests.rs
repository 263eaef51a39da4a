use super::*;

fn env(pairs: &[(&str, &str)]) -> Environment {
    let pairs: Vec<(String, OsString)> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), OsString::from(v)))
        .collect();
    Environment::capture(|name| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    })
}

#[test]
fn identities_are_reverse_domain_names() {
    assert!(AppIdentity::new("com.example.notes").is_ok());
    for bad in [
        "notes",
        "Com.Example",
        "com..example",
        "-a.b",
        "com.example/x",
        "a b.c",
    ] {
        assert!(AppIdentity::new(bad).is_err(), "{bad}");
    }
    let id = AppIdentity::new("com.example.notes").unwrap();
    assert_eq!(id.keychain_service(), "com.example.notes");
    assert_eq!(
        id.deep_link_redirect(&crate::ProviderId::new("github"))
            .as_str(),
        "com.example.notes:/callback/github"
    );
    assert!(id.is_redirect("COM.EXAMPLE.NOTES:/callback/x?code=1"));
    assert!(!id.is_redirect("dev.keylink:/callback/x"));
}

#[test]
fn data_dirs_are_per_app_and_never_relative() {
    let home = env(&[("HOME", "/home/ann")]);
    assert_eq!(
        AppIdentity::keylink().default_data_dir(&home).unwrap(),
        PathBuf::from("/home/ann/.local/share/keylink")
    );
    assert_eq!(
        AppIdentity::new("com.example.notes")
            .unwrap()
            .default_data_dir(&home)
            .unwrap(),
        PathBuf::from("/home/ann/.local/share/com.example.notes")
    );
    let xdg = env(&[("HOME", "/home/ann"), ("XDG_DATA_HOME", "/data")]);
    assert_eq!(
        AppIdentity::keylink().default_data_dir(&xdg).unwrap(),
        PathBuf::from("/data/keylink")
    );
    assert!(
        AppIdentity::keylink()
            .default_data_dir(&Environment::default())
            .is_err()
    );
    // Windows sets neither HOME nor XDG_DATA_HOME.
    let windows = env(&[("LOCALAPPDATA", "/Users/ann/AppData/Local")]);
    assert_eq!(
        AppIdentity::new("com.example.notes")
            .unwrap()
            .default_data_dir(&windows)
            .unwrap(),
        PathBuf::from("/Users/ann/AppData/Local/com.example.notes")
    );
    assert!(
        AppIdentity::keylink()
            .default_data_dir(&env(&[("KEYLINK_DATA_DIR", "relative/dir")]))
            .is_err()
    );
    assert!(
        AppIdentity::keylink()
            .default_data_dir(&env(&[("HOME", "relative")]))
            .is_err()
    );
}

use super::*;

fn handler(program: &str) -> UrlHandler {
    UrlHandler::new(
        "dev.keylink",
        DesktopFileId::new("keylink-app-handler.desktop").unwrap(),
        program,
    )
    .unwrap()
    .named("Keylink")
}

/// The `Exec` value of a rendered entry, as written in the file.
fn exec_value(entry: &str) -> &str {
    entry
        .lines()
        .find_map(|l| l.strip_prefix("Exec="))
        .expect("an Exec line")
}

fn words(value: &str) -> Vec<String> {
    parse_exec(value)
        .unwrap()
        .into_iter()
        .map(|w| w.text)
        .collect()
}

#[test]
fn plain_path_is_written_without_quotes() {
    let entry = handler("/opt/keylink/keylink-app").desktop_entry().unwrap();
    assert_eq!(
        entry,
        "[Desktop Entry]\nType=Application\nName=Keylink\nExec=/opt/keylink/keylink-app %u\n\
         Terminal=false\nNoDisplay=true\nMimeType=x-scheme-handler/dev.keylink;\n"
    );
}

#[test]
fn one_entry_handles_every_scheme_of_an_app() {
    let entry = handler("/opt/notes/notes")
        .also_handling("com.example.notes")
        .unwrap()
        .also_handling("dev.keylink")
        .unwrap()
        .desktop_entry()
        .unwrap();
    assert!(
        entry.ends_with(
            "MimeType=x-scheme-handler/dev.keylink;x-scheme-handler/com.example.notes;\n"
        ),
        "{entry}"
    );
    assert!(matches!(
        handler("/opt/notes/notes").also_handling("no scheme"),
        Err(DesktopEntryError::InvalidScheme(_))
    ));
}

#[test]
fn reserved_characters_are_quoted_and_escaped_in_both_layers() {
    let cases = [
        ("/home/a b/keylink-app", r#""/home/a b/keylink-app" %u"#),
        (
            "/opt/Keylink (1).AppImage",
            r#""/opt/Keylink (1).AppImage" %u"#,
        ),
        ("/opt/~k/app", r#""/opt/~k/app" %u"#),
        ("/opt/it's/app", r#""/opt/it's/app" %u"#),
        // `"`, `$` and `` ` `` get one backslash (quoting), which the string layer doubles.
        ("/opt/a\"b/app", r#""/opt/a\\"b/app" %u"#),
        ("/opt/$HOME/app", r#""/opt/\\$HOME/app" %u"#),
        ("/opt/a`b`/app", r#""/opt/a\\`b\\`/app" %u"#),
        // A literal backslash takes four, as the specification's own example says.
        ("/opt/a\\b/app", r#""/opt/a\\\\b/app" %u"#),
        // Control characters become string escapes inside the quotes.
        ("/opt/a\tb/app", r#""/opt/a\tb/app" %u"#),
        ("/opt/a\nb/app", r#""/opt/a\nb/app" %u"#),
        // `%` is doubled whether quoted or not.
        ("/opt/100%/app", "/opt/100%%/app %u"),
        ("/opt/100% sure/app", r#""/opt/100%% sure/app" %u"#),
    ];
    for (path, expected) in cases {
        let entry = handler(path).desktop_entry().unwrap();
        assert_eq!(exec_value(&entry), expected, "{path:?}");
    }
}

#[test]
fn quoting_round_trips_through_the_parser() {
    let paths = [
        "/opt/keylink/keylink-app",
        "/home/a b/keylink-app",
        "/tmp/x/Keylink (1).AppImage",
        "/p/\"q\"/$r/`s`/\\t/'u'/~v/<w>|x&y;z*?#/app",
        "/p/\\\\double\\/app",
        "/p/tab\there/new\nline/cr\rhere",
        "/p/100%/50%%/%u/app",
        "/p/ünïcödé/app",
        "/trailing/backslash\\",
    ];
    for path in paths {
        let entry = handler(path).desktop_entry().unwrap();
        let parsed = parse_exec(exec_value(&entry)).unwrap();
        assert_eq!(parsed.len(), 2, "{path:?}: {parsed:?}");
        assert_eq!(parsed[0].text, path);
        assert_eq!(parsed[0].quoted, needs_quoting(path) || path.contains('%'));
        assert_eq!(parsed[1].text, "%u");
    }
}

#[test]
fn parser_follows_the_specification() {
    // The deep-link plugin's entry: a plain path, needlessly quoted.
    let plugin = parse_exec(r#""/opt/keylink-app" %u"#).unwrap();
    assert_eq!(plugin[0].text, "/opt/keylink-app");
    assert!(plugin[0].quoted);
    assert!(!parse_exec("/usr/bin/keylink-app %u").unwrap()[0].quoted);
    assert_eq!(words("keylink-app %U"), ["keylink-app", "%U"]);
    // String escapes are undone first: `\s` is a space, so it separates unless quoted.
    assert_eq!(words(r"a\sb c"), ["a", "b", "c"]);
    assert_eq!(words(r#""a\sb" c"#), ["a b", "c"]);
    assert_eq!(words("prog  --flag   %u"), ["prog", "--flag", "%u"]);
    assert_eq!(words(r#"prog "a"b"c" d"#), ["prog", "abc", "d"]);
    assert_eq!(words(r#"prog """#), ["prog", ""]);
    assert_eq!(
        parse_exec(r#""/opt/a b"#).unwrap_err(),
        EntryProblem::UnterminatedQuote
    );
    assert_eq!(
        parse_exec(r#""/opt/\\x" %u"#).unwrap_err(),
        EntryProblem::InvalidEscape('x')
    );
    assert_eq!(parse_exec("   ").unwrap_err(), EntryProblem::EmptyExec);
}

#[test]
fn string_escaping_round_trips() {
    for s in [
        "plain",
        "a\\b",
        "\\\\",
        "new\nline",
        "tab\t",
        "cr\r",
        "\\s",
        "end\\",
    ] {
        assert_eq!(unescape_string(&escape_string(s)), s, "{s:?}");
        assert!(!escape_string(s).contains(['\n', '\r']));
    }
    assert_eq!(escape_string("bell\u{7}"), "bell");
}

#[test]
fn names_and_schemes_that_would_break_the_file_are_refused() {
    let id = || DesktopFileId::new("k.desktop").unwrap();
    for scheme in [
        "",
        "1abc",
        "dev keylink",
        "dev.keylink\nExec=evil",
        "a/b",
        "é",
    ] {
        assert!(
            matches!(
                UrlHandler::new(scheme, id(), "/bin/true"),
                Err(DesktopEntryError::InvalidScheme(_))
            ),
            "{scheme:?}"
        );
    }
    assert!(UrlHandler::new("x-my+app.v2", id(), "/bin/true").is_ok());
    for bad in [
        "",
        ".desktop",
        "k",
        "../k.desktop",
        "a/b.desktop",
        ".hidden.desktop",
        "-opt.desktop",
        "a b.desktop",
    ] {
        assert!(DesktopFileId::new(bad).is_err(), "{bad:?}");
    }
    assert!(matches!(
        UrlHandler::new("dev.keylink", id(), "keylink-app"),
        Err(DesktopEntryError::RelativeProgram(_))
    ));
    for program in ["/opt/a=b/app", "/opt/a\u{1}b/app"] {
        assert!(
            matches!(
                handler(program).desktop_entry(),
                Err(DesktopEntryError::UnrepresentableProgram(_))
            ),
            "{program:?}"
        );
    }
    // The display name is a string value: a newline cannot add a key.
    let entry = handler("/bin/true")
        .named("Keylink\nExec=/bin/evil")
        .desktop_entry()
        .unwrap();
    assert_eq!(entry.lines().filter(|l| l.starts_with("Exec=")).count(), 1);
    assert!(entry.contains("Name=Keylink\\nExec=/bin/evil\n"));
}

#[test]
fn xdg_open_runs_only_paths_without_quoting_or_shell_characters() {
    assert!(runs_under_xdg_open(Path::new(
        "/home/u/.cargo/target/debug/keylink-app"
    )));
    assert!(runs_under_xdg_open(Path::new(
        "/opt/Kéylink_1.2+x,y@z:w/app"
    )));
    for path in [
        "/home/u/My Apps/keylink-app",
        "/tmp/Keylink (1).AppImage",
        "/opt/a%b",
        "/opt/a=b",
        "/opt/a[1]",
        "/opt/a\u{a0}b",
    ] {
        assert!(!runs_under_xdg_open(Path::new(path)), "{path:?}");
    }
}

#[test]
fn data_dirs_follow_the_base_directory_specification() {
    let vars = |pairs: &'static [(&'static str, &'static str)]| {
        move |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| OsString::from(v))
        }
    };
    let dirs = XdgDataDirs::from_vars(vars(&[("HOME", "/home/u")])).unwrap();
    assert_eq!(dirs.home, Path::new("/home/u/.local/share"));
    assert_eq!(
        dirs.dirs,
        [Path::new("/usr/local/share"), Path::new("/usr/share")]
    );
    let dirs = XdgDataDirs::from_vars(vars(&[
        ("HOME", "/home/u"),
        ("XDG_DATA_HOME", "/data"),
        ("XDG_DATA_DIRS", "/a:relative::/b"),
    ]))
    .unwrap();
    assert_eq!(dirs.home, Path::new("/data"));
    assert_eq!(dirs.dirs, [Path::new("/a"), Path::new("/b")]);
    assert_eq!(
        dirs.applications_dirs().collect::<Vec<_>>(),
        [
            Path::new("/data/applications"),
            Path::new("/a/applications"),
            Path::new("/b/applications")
        ]
    );
    // A relative XDG_DATA_HOME is ignored; without HOME there is no data home at all.
    let dirs = XdgDataDirs::from_vars(vars(&[("HOME", "/h"), ("XDG_DATA_HOME", "rel")])).unwrap();
    assert_eq!(dirs.home, Path::new("/h/.local/share"));
    assert_eq!(XdgDataDirs::from_vars(vars(&[("HOME", "")])), None);
    assert_eq!(XdgDataDirs::from_vars(vars(&[])), None);
}

#[test]
fn desktop_files_are_found_like_xdg_open_finds_them() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let system = tmp.path().join("system");
    for dir in [
        home.join("applications"),
        system.join("applications/vendor"),
    ] {
        std::fs::create_dir_all(dir).unwrap();
    }
    std::fs::write(system.join("applications/vendor/app.desktop"), "").unwrap();
    std::fs::write(system.join("applications/both.desktop"), "").unwrap();
    std::fs::write(home.join("applications/both.desktop"), "").unwrap();
    let dirs = XdgDataDirs {
        home: home.clone(),
        dirs: vec![system.clone()],
    };
    assert_eq!(
        dirs.find("both.desktop"),
        Some(home.join("applications/both.desktop"))
    );
    assert_eq!(
        dirs.find("vendor-app.desktop"),
        Some(system.join("applications/vendor/app.desktop"))
    );
    assert_eq!(dirs.find("none.desktop"), None);
}

#[test]
fn exec_is_read_from_the_desktop_entry_group_only() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("k.desktop");
    std::fs::write(
        &file,
        "# comment\n[Desktop Action new]\nExec=/bin/wrong\n[Desktop Entry]\nName=K\n\
         Exec[de]=/bin/localised\nExec = \"/opt/a b/app\" %u\n",
    )
    .unwrap();
    let program = read_exec(&file).unwrap();
    assert_eq!(program.text, "/opt/a b/app");
    assert!(program.quoted);
    std::fs::write(&file, "[Desktop Entry]\nName=K\n").unwrap();
    assert_eq!(read_exec(&file).unwrap_err(), EntryProblem::NoExec);
    assert!(matches!(
        read_exec(&tmp.path().join("missing.desktop")),
        Err(EntryProblem::Unreadable(_))
    ));
}

//! `keylink --app <identifier>` (and `KEYLINK_APP`): the accounts of another app embedding
//! Keylink, apart from the Keylink app's own.

use crate::support::{Home, Idp, stderr};

#[test]
fn keylink_app_option_reaches_another_apps_accounts() {
    let idp = Idp::start();
    let home = Home::for_idp(&idp);
    // Each app keeps its data where its identity says, under XDG_DATA_HOME.
    let as_notes = || {
        let mut cmd = home.keylink();
        cmd.env_remove("KEYLINK_DATA_DIR")
            .env("KEYLINK_APP", "com.example.notes");
        cmd
    };
    let out = as_notes()
        .args(["link", "demo", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let linked: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = linked["id"].as_str().unwrap().to_owned();
    let list = |args: &[&str]| -> serde_json::Value {
        let out = home
            .keylink()
            .env_remove("KEYLINK_DATA_DIR")
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let theirs = list(&["--app", "com.example.notes", "list", "--json"]);
    assert_eq!(theirs[0]["id"], id.as_str());
    let ours = list(&["list", "--json"]);
    assert_eq!(
        ours,
        serde_json::json!([]),
        "the Keylink app's own accounts are apart"
    );
    let out = home
        .keylink()
        .env_remove("KEYLINK_DATA_DIR")
        .args(["--app", "com.example.notes", "token", &id])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let bad = home.run(&["--app", "Not An Id", "list"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("reverse-domain"));
    let out = as_notes().args(["unlink", &id]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

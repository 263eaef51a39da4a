//! The admin's system policy (`KEYLINK_POLICY` stands in for `/etc/keylink/keylink.toml`):
//! locked providers, `allow_user_providers = false`, network settings from the policy, and a
//! policy file others could rewrite.

use crate::support::{Home, Idp, stderr};

/// A home whose user file is `user` and whose policy file is `policy`.
fn home_with_policy(policy: &str, user: &str) -> Home {
    let home = Home::with_config(user, None);
    std::fs::write(home.dir.path().join("policy.toml"), policy).unwrap();
    home
}

/// Runs `keylink doctor --json`; returns its exit code and the check with `id`.
fn doctor_check(home: &Home, id: &str) -> (Option<i32>, serde_json::Value, String) {
    let out = home.run(&["doctor", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let check = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("no {id} check in {report}"));
    (out.status.code(), check, stderr(&out))
}

fn providers(home: &Home) -> (serde_json::Value, String) {
    let out = home.run(&["providers", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    (serde_json::from_slice(&out.stdout).unwrap(), stderr(&out))
}

#[test]
fn a_locked_provider_cannot_be_replaced_and_the_user_is_told() {
    let policy = "[providers.corp]\nname = \"Corp\"\nissuer = \"https://sso.corp.example\"\nclient_id = \"corp\"\nlocked = true\n";
    let user = "[providers.corp]\nissuer = \"https://evil.example\"\nclient_id = \"mine\"\n\
                [providers.mine]\nissuer = \"https://login.example.com\"\nclient_id = \"x\"\n";
    let home = home_with_policy(policy, user);
    let (list, warnings) = providers(&home);
    let corp = list
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "corp")
        .unwrap();
    assert_eq!(corp["issuer"], "https://sso.corp.example");
    assert_eq!(corp["source"], "policy");
    assert_eq!(corp["locked"], true);
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|p| p["id"] == "mine" && p["source"] == "user")
    );
    assert!(
        warnings.contains("warning")
            && warnings.contains("\"corp\" was ignored because the system policy locks it"),
        "{warnings}"
    );
    let text = home.ok(&["providers"]);
    assert!(text.contains("(system policy, locked)"), "{text}");
}

#[test]
fn allow_user_providers_false_ignores_the_users_providers() {
    let policy = "[policy]\nallow_user_providers = false\n\
                  [providers.corp]\nissuer = \"https://sso.corp.example\"\nclient_id = \"corp\"\n";
    let user = "[providers.mine]\nissuer = \"https://login.example.com\"\nclient_id = \"x\"\n";
    let home = home_with_policy(policy, user);
    let (list, warnings) = providers(&home);
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["corp"]);
    assert!(
        warnings.contains("allows only its own providers"),
        "{warnings}"
    );
    let out = home.run(&["link", "mine", "--no-browser"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn the_ca_from_the_policy_is_trusted_and_a_user_file_cannot_replace_it() {
    let idp = Idp::start();
    let policy = format!("[network]\nca_file = \"{}\"\n", idp.ca.ca_pem.display());
    let elsewhere = tempfile::NamedTempFile::new().unwrap();
    let user = format!(
        "[providers.demo]\nissuer = \"{}\"\nclient_id = \"keylink-demo\"\n[network]\nca_file = \"{}\"\n",
        idp.issuer,
        elsewhere.path().display()
    );
    let home = home_with_policy(&policy, &user);
    let (code, demo, err) = doctor_check(&home, "provider.demo");
    assert_eq!(
        demo["status"], "ok",
        "the provider's TLS was verified with the policy's CA: {demo}"
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("network.ca_file ignored"), "{err}");

    // The control: without the policy the provider's certificate is not trusted.
    std::fs::remove_file(home.dir.path().join("policy.toml")).unwrap();
    let user = format!(
        "[providers.demo]\nissuer = \"{}\"\nclient_id = \"keylink-demo\"\n",
        idp.issuer
    );
    std::fs::write(&home.config, user).unwrap();
    let (code, demo, err) = doctor_check(&home, "provider.demo");
    assert_eq!(demo["status"], "fail", "{demo}");
    assert_eq!(code, Some(1), "{err}");
}

#[test]
fn a_policy_file_others_can_write_is_reported() {
    use std::os::unix::fs::PermissionsExt;
    let home = home_with_policy("[policy]\nallow_user_providers = true\n", "");
    let policy = home.dir.path().join("policy.toml");
    std::fs::set_permissions(&policy, std::fs::Permissions::from_mode(0o666)).unwrap();
    let (code, check, err) = doctor_check(&home, "policy");
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(check["status"], "fail");
    assert!(
        check["message"]
            .as_str()
            .unwrap()
            .contains("can be written by other users"),
        "{check}"
    );
    assert!(
        check["fix"].as_str().unwrap().contains("chmod 644"),
        "{check}"
    );
    // Not writable by others: it passes (or warns when not owned by root, as on a laptop).
    std::fs::set_permissions(&policy, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, check, err) = doctor_check(&home, "policy");
    assert_ne!(check["status"], "fail", "{check}");
    assert_eq!(code, Some(0), "{err}");

    // A policy that does not parse stops everything with the file and key named.
    std::fs::write(&policy, "[policy]\nallow_user_providers = \"maybe\"\n").unwrap();
    let out = home.run(&["providers"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("policy.toml"), "{}", stderr(&out));
}

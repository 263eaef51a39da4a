/// The plugin's commands: `build.rs` generates one permission per command from this list,
/// and `keylink:default` allows all of them except `fetch`.
const COMMANDS: &[&str] = &[
    "providers",
    "accounts",
    "link",
    "link_with_device",
    "reconnect",
    "cancel_link",
    "check_connection",
    "unlink",
    "watch_accounts",
    "unwatch_accounts",
    "fetch",
];

// The app's IPC commands, in one list: the build script generates their permissions and the
// window's capability from it, and `main.rs` registers exactly these handlers. Included by
// both `build.rs` and the crate, so it holds nothing but the list.

/// Every command the UI may invoke.
pub const COMMANDS: &[&str] = &[
    "app_state",
    "start_link",
    "start_device_link",
    "cancel_link",
    "check_connection",
    "unlink",
];

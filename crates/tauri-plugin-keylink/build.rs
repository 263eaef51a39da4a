// Generates the plugin's permissions (one allow-/deny- pair per command) from the one list of
// command names, and registers the JS API's IIFE build as the global script that
// `withGlobalTauri` apps get as `window.__TAURI__.keylink`.

include!("src/command_names.rs");

fn main() {
    tauri_plugin::Builder::new(COMMANDS)
        .global_api_script_path("./api-iife.js")
        .build();
}

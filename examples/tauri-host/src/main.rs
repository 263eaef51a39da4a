//! The smallest app embedding tauri-plugin-keylink. Everything about linking is the plugin's:
//! these three plugin lines, `plugins.keylink` in tauri.conf.json and a capability.

#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() {
    tauri::Builder::default()
        .plugin(tauri_plugin_single_instance::init(|_, _, _| {}))
        .plugin(tauri_plugin_deep_link::init())
        .plugin(tauri_plugin_keylink::init())
        .run(tauri::generate_context!())
        .unwrap_or_else(|e| {
            eprintln!("keylink-example-host: the app could not start: {e}");
            std::process::exit(1);
        });
}

// tauri-build: config, ACL (the plugins' permissions and capabilities/main.json), icons,
// context. The app has no commands of its own; its window calls the Keylink plugin's.

fn main() {
    tauri_build::build();
}

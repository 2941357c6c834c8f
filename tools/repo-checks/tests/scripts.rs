//! Every script in scripts/ is strict bash and answers --help.

use repo_checks::repo_root;
use std::process::Command;

#[test]
fn every_script_is_strict_and_has_help() {
    let mut checked = 0;
    for entry in std::fs::read_dir(repo_root().join("scripts")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("sh") {
            continue;
        }
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("#!/usr/bin/env bash\n"),
            "{name}: not a bash script"
        );
        assert!(
            text.contains("\nset -euo pipefail\n"),
            "{name}: no set -euo pipefail"
        );
        let help = Command::new("bash")
            .arg(&path)
            .arg("--help")
            .env_clear()
            .output()
            .unwrap();
        let shown = String::from_utf8_lossy(&help.stdout);
        assert!(help.status.success(), "{name} --help failed");
        assert!(shown.contains("usage:"), "{name} --help: {shown}");
        checked += 1;
    }
    assert!(checked >= 12, "only {checked} scripts found");
}

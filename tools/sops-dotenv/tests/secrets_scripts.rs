//! scripts/secrets-*.sh with the sops-dotenv fallback (no sops on these machines), in a
//! temporary folder laid out like the repository. Also: the committed .env.enc.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// A folder with the repository's scripts/ and nothing else.
fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let scripts = dir.path().join("scripts/lib");
    std::fs::create_dir_all(&scripts).unwrap();
    for name in [
        "secrets-init.sh",
        "secrets-encrypt.sh",
        "secrets-decrypt.sh",
        "secrets-edit.sh",
        "lib/secrets.sh",
    ] {
        std::fs::copy(
            repo_root().join("scripts").join(name),
            dir.path().join("scripts").join(name),
        )
        .unwrap();
    }
    dir
}

fn script(dir: &Path, name: &str, extra: &[(&str, &str)]) -> Output {
    let mut command = Command::new("bash");
    command
        .arg(dir.join("scripts").join(name))
        .env("SOPS_DOTENV", env!("CARGO_BIN_EXE_sops-dotenv"))
        .env_remove("SOPS_AGE_KEY_FILE");
    for (key, value) in extra {
        command.env(key, value);
    }
    command.output().unwrap()
}

fn all_output(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

const ENV: &str = "# household secrets\nHA_TOKEN=eyJhbGciOi.abc\nMQTT_PASSWORD=p@ss=word\nEMPTY=\nNOTE=two\\nlines\n";

#[test]
fn init_encrypt_decrypt_round_trip_gives_the_same_bytes() {
    let dir = workspace();
    let init = script(dir.path(), "secrets-init.sh", &[]);
    assert!(init.status.success(), "{}", all_output(&init));
    let key = std::fs::read_to_string(dir.path().join(".sops/age-key.txt")).unwrap();
    let public = std::fs::read_to_string(dir.path().join(".sops/age-key.pub")).unwrap();
    assert!(key.contains("AGE-SECRET-KEY-1") && public.starts_with("age1"));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.path().join(".sops/age-key.txt"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the private key must be private");
    let rules = std::fs::read_to_string(dir.path().join(".sops.yaml")).unwrap();
    assert!(rules.contains(public.trim()) && !rules.contains("AGE-SECRET-KEY"));

    std::fs::write(dir.path().join(".env"), ENV).unwrap();
    let encrypt = script(dir.path(), "secrets-encrypt.sh", &[]);
    assert!(encrypt.status.success(), "{}", all_output(&encrypt));
    let encrypted = std::fs::read_to_string(dir.path().join(".env.enc")).unwrap();
    assert!(
        !encrypted.contains("eyJhbGciOi") && !encrypted.contains("p@ss"),
        "{encrypted}"
    );

    std::fs::remove_file(dir.path().join(".env")).unwrap();
    let decrypt = script(dir.path(), "secrets-decrypt.sh", &[]);
    assert!(decrypt.status.success(), "{}", all_output(&decrypt));
    assert_eq!(
        std::fs::read_to_string(dir.path().join(".env")).unwrap(),
        ENV
    );

    let again = script(dir.path(), "secrets-init.sh", &[]);
    assert_eq!(again.status.code(), Some(1));
    assert!(all_output(&again).contains("already exists"));
    assert_eq!(
        std::fs::read_to_string(dir.path().join(".sops/age-key.txt")).unwrap(),
        key
    );
}

#[test]
fn a_wrong_key_fails_clearly_and_leaves_env_untouched() {
    let dir = workspace();
    assert!(script(dir.path(), "secrets-init.sh", &[]).status.success());
    std::fs::write(dir.path().join(".env"), ENV).unwrap();
    assert!(script(dir.path(), "secrets-encrypt.sh", &[])
        .status
        .success());

    // Another machine's key, and a local .env the user cares about.
    let other = dir.path().join("other-key.txt");
    let keygen = Command::new(env!("CARGO_BIN_EXE_sops-dotenv"))
        .arg("keygen")
        .arg(&other)
        .output()
        .unwrap();
    assert!(keygen.status.success());
    std::fs::write(dir.path().join(".env"), "LOCAL_ONLY=keep me\n").unwrap();
    let decrypt = script(
        dir.path(),
        "secrets-decrypt.sh",
        &[("SOPS_AGE_KEY_FILE", other.to_str().unwrap())],
    );
    assert_eq!(decrypt.status.code(), Some(1));
    let message = all_output(&decrypt);
    assert!(
        message.contains("none of the given age keys can decrypt"),
        "{message}"
    );
    assert!(message.contains(".env was not changed"), "{message}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join(".env")).unwrap(),
        "LOCAL_ONLY=keep me\n"
    );

    let missing = script(
        dir.path(),
        "secrets-decrypt.sh",
        &[("SOPS_AGE_KEY_FILE", "/nonexistent/key.txt")],
    );
    assert_eq!(missing.status.code(), Some(1));
    assert!(all_output(&missing).contains("no age key at /nonexistent/key.txt"));
}

#[test]
fn edit_re_encrypts_what_the_editor_changed_and_leaves_no_plain_copy() {
    let dir = workspace();
    assert!(script(dir.path(), "secrets-init.sh", &[]).status.success());
    std::fs::write(dir.path().join(".env"), ENV).unwrap();
    assert!(script(dir.path(), "secrets-encrypt.sh", &[])
        .status
        .success());
    let editor = dir.path().join("editor.sh");
    let temp_root = dir.path().join("tmp");
    std::fs::create_dir_all(&temp_root).unwrap();
    std::fs::write(&editor, "#!/bin/sh\necho 'NEW_SECRET=added' >> \"$1\"\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&editor, std::fs::Permissions::from_mode(0o755)).unwrap();
    let edit = script(
        dir.path(),
        "secrets-edit.sh",
        &[
            ("EDITOR", editor.to_str().unwrap()),
            ("TMPDIR", temp_root.to_str().unwrap()),
        ],
    );
    assert!(edit.status.success(), "{}", all_output(&edit));
    assert_eq!(
        std::fs::read_dir(&temp_root).unwrap().count(),
        0,
        "the plain temp copy must be gone"
    );
    std::fs::remove_file(dir.path().join(".env")).unwrap();
    assert!(script(dir.path(), "secrets-decrypt.sh", &[])
        .status
        .success());
    assert_eq!(
        std::fs::read_to_string(dir.path().join(".env")).unwrap(),
        format!("{ENV}NEW_SECRET=added\n")
    );
}

#[test]
fn the_committed_env_enc_is_env_example_for_the_documented_recipient() {
    let root = repo_root();
    let rules = std::fs::read_to_string(root.join(".sops.yaml")).unwrap();
    let recipients = sops_dotenv::recipients_from_sops_yaml(&rules).unwrap();
    assert_eq!(recipients.len(), 1);
    let encrypted = std::fs::read_to_string(root.join(".env.enc")).unwrap();
    assert!(encrypted.contains(&format!(
        "sops_age__list_0__map_recipient={}\n",
        recipients[0]
    )));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    assert!(
        readme.contains(&recipients[0]),
        "README documents the recipient"
    );
    // Same keys, in the same order, as .env.example; every non-empty value encrypted.
    let example =
        sops_dotenv::parse(&std::fs::read_to_string(root.join(".env.example")).unwrap()).unwrap();
    let sealed = sops_dotenv::parse(&encrypted).unwrap();
    let keys = |entries: &[sops_dotenv::Entry]| -> Vec<String> {
        entries
            .iter()
            .filter_map(|entry| match entry {
                sops_dotenv::Entry::Pair { key, .. } if !key.starts_with("sops_") => {
                    Some(key.clone())
                }
                _ => None,
            })
            .collect()
    };
    assert_eq!(
        keys(&sealed),
        keys(&example),
        ".env.enc is out of date; refresh it (needs only the public key): \
         cargo run -p sops-dotenv -- encrypt .env.example --output .env.enc"
    );
    for entry in &sealed {
        if let sops_dotenv::Entry::Pair { key, value } = entry {
            if !key.starts_with("sops_") {
                assert!(
                    value.is_empty() || value.starts_with("ENC[AES256_GCM,"),
                    "{key} is not encrypted"
                );
            }
        }
    }
}

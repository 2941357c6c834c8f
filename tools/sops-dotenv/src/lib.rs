//! SOPS's dotenv format with age keys, written from SOPS's own rules so that a file
//! written here opens with `sops -d`, and one written by `sops -e` opens here:
//!
//! - lines: empty ones dropped, `#…` a comment, else `KEY=VALUE` split at the first
//!   `=`, with `\n` in a value standing for a newline;
//! - each value (and comment) is AES-256-GCM with a 32-byte IV under a random data
//!   key, the additional data being `KEY:` (`:` for comments), written as
//!   `ENC[AES256_GCM,data:…,iv:…,tag:…,type:str|comment]`; empty values stay empty;
//!   keys ending in `_unencrypted` stay plain;
//! - the MAC is the upper-case hex SHA-512 of the plain values in order (comments
//!   excluded), encrypted like a value with `lastmodified` as additional data;
//! - the data key is age-encrypted (armored) to each recipient; the metadata is
//!   appended as sorted `sops_*` lines with newlines escaped.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::aes::Aes256;
use aes_gcm::{AesGcm, Nonce};
use anyhow::{anyhow, bail, Context, Result};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use sha2::{Digest, Sha512};
use std::str::FromStr;

type SopsGcm = AesGcm<Aes256, aes_gcm::aead::consts::U32>;

/// The SOPS version we write; the format has been stable across 3.x.
pub const SOPS_VERSION: &str = "3.9.4";
const UNENCRYPTED_SUFFIX: &str = "_unencrypted";

/// One line of a dotenv file as SOPS sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    Comment(String),
    Pair { key: String, value: String },
}

/// Parses plain dotenv text the way SOPS's dotenv store does.
pub fn parse(text: &str) -> Result<Vec<Entry>> {
    let mut entries = Vec::new();
    for (number, line) in text.split('\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            entries.push(Entry::Comment(comment.to_string()));
            continue;
        }
        let (key, value) = line.split_once('=').ok_or_else(|| {
            anyhow!(
                "line {}: {:?} is neither KEY=VALUE nor a #comment",
                number + 1,
                line
            )
        })?;
        entries.push(Entry::Pair {
            key: key.to_string(),
            value: value.replace("\\n", "\n"),
        });
    }
    Ok(entries)
}

/// Writes entries back as dotenv text (what `sops -d` prints).
pub fn emit(entries: &[Entry]) -> String {
    let mut out = String::new();
    for entry in entries {
        match entry {
            Entry::Comment(text) => {
                out.push('#');
                out.push_str(text);
            }
            Entry::Pair { key, value } => {
                out.push_str(key);
                out.push('=');
                out.push_str(&value.replace('\n', "\\n"));
            }
        }
        out.push('\n');
    }
    out
}

fn random<const N: usize>() -> Result<[u8; N]> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|error| anyhow!("no randomness: {error}"))?;
    Ok(bytes)
}

fn encrypt_value(plain: &str, kind: &str, key: &[u8; 32], additional: &str) -> Result<String> {
    if plain.is_empty() {
        return Ok(String::new());
    }
    let iv = random::<32>()?;
    let cipher = SopsGcm::new_from_slice(key).map_err(|_| anyhow!("bad data key length"))?;
    let sealed = cipher
        .encrypt(
            Nonce::from_slice(&iv),
            Payload {
                msg: plain.as_bytes(),
                aad: additional.as_bytes(),
            },
        )
        .map_err(|_| anyhow!("AES-GCM encryption failed"))?;
    let (data, tag) = sealed.split_at(sealed.len() - 16);
    Ok(format!(
        "ENC[AES256_GCM,data:{},iv:{},tag:{},type:{kind}]",
        BASE64.encode(data),
        BASE64.encode(iv),
        BASE64.encode(tag)
    ))
}

/// Decrypts one `ENC[…]` value; returns the text and its SOPS type.
fn decrypt_value(sealed: &str, key: &[u8; 32], additional: &str) -> Result<(String, String)> {
    if sealed.is_empty() {
        return Ok((String::new(), "str".into()));
    }
    let inner = sealed
        .strip_prefix("ENC[AES256_GCM,")
        .and_then(|rest| rest.strip_suffix(']'))
        .ok_or_else(|| anyhow!("not a SOPS value: {sealed:.40}…"))?;
    let mut fields = std::collections::HashMap::new();
    for part in inner.split(',') {
        let (name, value) = part
            .split_once(':')
            .ok_or_else(|| anyhow!("malformed SOPS value"))?;
        fields.insert(name, value);
    }
    let field = |name: &str| {
        fields
            .get(name)
            .copied()
            .ok_or_else(|| anyhow!("SOPS value without {name}"))
    };
    let data = BASE64
        .decode(field("data")?)
        .context("data is not base64")?;
    let iv = BASE64.decode(field("iv")?).context("iv is not base64")?;
    let tag = BASE64.decode(field("tag")?).context("tag is not base64")?;
    if iv.len() != 32 {
        bail!("unsupported IV length {}", iv.len());
    }
    let cipher = SopsGcm::new_from_slice(key).map_err(|_| anyhow!("bad data key length"))?;
    let sealed_bytes = [data, tag].concat();
    let plain = cipher
        .decrypt(
            Nonce::from_slice(&iv),
            Payload {
                msg: &sealed_bytes,
                aad: additional.as_bytes(),
            },
        )
        .map_err(|_| {
            anyhow!("a value does not decrypt with the data key (file changed or corrupt)")
        })?;
    Ok((
        String::from_utf8(plain).context("value is not UTF-8")?,
        field("type")?.to_string(),
    ))
}

fn mac_of(entries: &[Entry]) -> String {
    let mut hash = Sha512::new();
    for entry in entries {
        if let Entry::Pair { value, .. } = entry {
            hash.update(value.as_bytes());
        }
    }
    hash.finalize()
        .iter()
        .map(|byte| format!("{byte:02X}"))
        .collect()
}

/// Encrypts plain dotenv text to each age recipient (`age1…`).
pub fn encrypt(plain_text: &str, recipients: &[String]) -> Result<String> {
    if recipients.is_empty() {
        bail!("no age recipient given (set one in .sops.yaml or pass --age)");
    }
    let entries = parse(plain_text)?;
    for entry in &entries {
        if let Entry::Pair { key, .. } = entry {
            if key.starts_with("sops_") {
                bail!("{key}: keys starting with sops_ are reserved for SOPS metadata");
            }
        }
    }
    let data_key = random::<32>()?;
    let mut out = Vec::with_capacity(entries.len() + 6);
    for entry in &entries {
        out.push(match entry {
            Entry::Comment(text) => Entry::Comment(encrypt_value(text, "comment", &data_key, ":")?),
            Entry::Pair { key, value } if key.ends_with(UNENCRYPTED_SUFFIX) => entry.clone(),
            Entry::Pair { key, value } => Entry::Pair {
                key: key.clone(),
                value: encrypt_value(value, "str", &data_key, &format!("{key}:"))?,
            },
        });
    }
    let last_modified = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let mut metadata: Vec<(String, String)> = Vec::new();
    for (index, recipient) in recipients.iter().enumerate() {
        let parsed = age::x25519::Recipient::from_str(recipient.trim())
            .map_err(|error| anyhow!("{recipient:?} is not an age recipient: {error}"))?;
        let armored =
            age::encrypt_and_armor(&parsed, &data_key).context("age encryption of the data key")?;
        metadata.push((format!("sops_age__list_{index}__map_enc"), armored));
        metadata.push((
            format!("sops_age__list_{index}__map_recipient"),
            recipient.trim().to_string(),
        ));
    }
    metadata.push(("sops_lastmodified".into(), last_modified.clone()));
    metadata.push((
        "sops_mac".into(),
        encrypt_value(&mac_of(&entries), "str", &data_key, &last_modified)?,
    ));
    metadata.push(("sops_unencrypted_suffix".into(), UNENCRYPTED_SUFFIX.into()));
    metadata.push(("sops_version".into(), SOPS_VERSION.into()));
    metadata.sort();
    out.extend(
        metadata
            .into_iter()
            .map(|(key, value)| Entry::Pair { key, value }),
    );
    Ok(emit(&out))
}

/// Reads the age identities (`AGE-SECRET-KEY-1…` lines) of a key file's text.
pub fn identities(key_file_text: &str) -> Result<Vec<age::x25519::Identity>> {
    let keys: Vec<_> = key_file_text
        .lines()
        .map(str::trim)
        .filter(|line| line.starts_with("AGE-SECRET-KEY-1"))
        .map(|line| {
            age::x25519::Identity::from_str(line)
                .map_err(|error| anyhow!("bad age secret key: {error}"))
        })
        .collect::<Result<_>>()?;
    if keys.is_empty() {
        bail!("no AGE-SECRET-KEY-1… line in the key file");
    }
    Ok(keys)
}

/// Decrypts a SOPS dotenv file and checks its MAC; returns plain dotenv text.
pub fn decrypt(encrypted_text: &str, identities: &[age::x25519::Identity]) -> Result<String> {
    let entries = parse(encrypted_text)?;
    let mut metadata = std::collections::BTreeMap::new();
    let mut body = Vec::new();
    for entry in entries {
        match entry {
            Entry::Pair { key, value } if key.starts_with("sops_") => {
                metadata.insert(key["sops_".len()..].to_string(), value.replace("\\n", "\n"));
            }
            other => body.push(other),
        }
    }
    if metadata.is_empty() {
        bail!("no sops_ metadata: this is not a SOPS-encrypted dotenv file");
    }
    let mut data_key = None;
    let mut recipients = Vec::new();
    for index in 0.. {
        let Some(enc) = metadata.get(&format!("age__list_{index}__map_enc")) else {
            break;
        };
        recipients.push(
            metadata
                .get(&format!("age__list_{index}__map_recipient"))
                .cloned()
                .unwrap_or_default(),
        );
        for identity in identities {
            if let Ok(key) = age::decrypt(identity, enc.as_bytes()) {
                data_key = Some(key);
                break;
            }
        }
        if data_key.is_some() {
            break;
        }
    }
    if recipients.is_empty() {
        bail!("the file has no age recipients (encrypted with another SOPS key type?)");
    }
    let data_key: [u8; 32] = data_key
        .ok_or_else(|| {
            anyhow!(
                "none of the given age keys can decrypt it; it is encrypted for: {}",
                recipients.join(", ")
            )
        })?
        .try_into()
        .map_err(|_| anyhow!("the data key is not 32 bytes"))?;
    let mut plain = Vec::with_capacity(body.len());
    for entry in body {
        plain.push(match entry {
            Entry::Comment(sealed) if sealed.starts_with("ENC[") => {
                Entry::Comment(decrypt_value(&sealed, &data_key, ":")?.0)
            }
            Entry::Comment(text) => Entry::Comment(text),
            Entry::Pair { key, value } if key.ends_with(UNENCRYPTED_SUFFIX) => {
                Entry::Pair { key, value }
            }
            Entry::Pair { key, value } => {
                let (text, _) = decrypt_value(&value, &data_key, &format!("{key}:"))
                    .with_context(|| format!("cannot decrypt {key}"))?;
                Entry::Pair { key, value: text }
            }
        });
    }
    if let (Some(mac), Some(last_modified)) = (metadata.get("mac"), metadata.get("lastmodified")) {
        let (stored, _) =
            decrypt_value(mac, &data_key, last_modified).context("cannot decrypt the MAC")?;
        if stored != mac_of(&plain) {
            bail!("MAC mismatch: the file was changed after it was encrypted");
        }
    } else {
        bail!("the file has no MAC; refusing to trust it");
    }
    Ok(emit(&plain))
}

/// The age recipients of the first `.sops.yaml` creation rule whose `path_regex`
/// mentions `.env` (or of the first rule), comma-separated as SOPS allows.
pub fn recipients_from_sops_yaml(text: &str) -> Result<Vec<String>> {
    let value: serde_norway::Value =
        serde_norway::from_str(text).context(".sops.yaml is not valid YAML")?;
    let rules = value["creation_rules"]
        .as_sequence()
        .ok_or_else(|| anyhow!(".sops.yaml has no creation_rules"))?;
    let rule = rules
        .iter()
        .find(|rule| {
            rule["path_regex"]
                .as_str()
                .is_some_and(|regex| regex.contains("env"))
        })
        .or_else(|| rules.first())
        .ok_or_else(|| anyhow!(".sops.yaml has an empty creation_rules list"))?;
    let age = rule["age"]
        .as_str()
        .ok_or_else(|| anyhow!("the .sops.yaml rule has no age recipients"))?;
    Ok(age
        .split(',')
        .map(|r| r.trim().to_string())
        .filter(|r| !r.is_empty())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use age::secrecy::ExposeSecret;

    fn key_pair() -> (String, Vec<age::x25519::Identity>) {
        let identity = age::x25519::Identity::generate();
        let recipient = identity.to_public().to_string();
        let text = identity.to_string().expose_secret().to_string();
        (recipient, identities(&text).unwrap())
    }

    const SAMPLE: &str = "# homelab\nHA_TOKEN=abc.def==\nEMPTY=\nMULTI=line1\\nline2\nPUBLIC_unencrypted=visible\nURL=http://x:8123/?a=b\n";

    #[test]
    fn round_trip_gives_the_same_bytes() {
        let (recipient, keys) = key_pair();
        let encrypted = encrypt(SAMPLE, &[recipient]).unwrap();
        assert!(!encrypted.contains("abc.def"), "{encrypted}");
        assert!(
            !encrypted.contains("homelab\n"),
            "comments are encrypted too"
        );
        assert!(encrypted.contains("PUBLIC_unencrypted=visible\n"));
        assert!(
            encrypted.contains("\nEMPTY=\n"),
            "empty values stay empty, as in SOPS"
        );
        assert_eq!(decrypt(&encrypted, &keys).unwrap(), SAMPLE);
    }

    #[test]
    fn the_metadata_is_sorted_and_sops_shaped() {
        let (recipient, _) = key_pair();
        let encrypted = encrypt(SAMPLE, std::slice::from_ref(&recipient)).unwrap();
        let meta: Vec<&str> = encrypted
            .lines()
            .filter(|l| l.starts_with("sops_"))
            .map(|l| l.split('=').next().unwrap())
            .collect();
        assert_eq!(
            meta,
            [
                "sops_age__list_0__map_enc",
                "sops_age__list_0__map_recipient",
                "sops_lastmodified",
                "sops_mac",
                "sops_unencrypted_suffix",
                "sops_version"
            ]
        );
        let enc = encrypted
            .lines()
            .find(|l| l.starts_with("sops_age__list_0__map_enc="))
            .unwrap();
        assert!(
            enc.contains("-----BEGIN AGE ENCRYPTED FILE-----\\n"),
            "{enc}"
        );
        assert!(encrypted.contains(&format!("sops_age__list_0__map_recipient={recipient}\n")));
    }

    #[test]
    fn a_wrong_key_or_a_tampered_file_is_refused() {
        let (recipient, _) = key_pair();
        let (_, other_keys) = key_pair();
        let encrypted = encrypt(SAMPLE, std::slice::from_ref(&recipient)).unwrap();
        let error = decrypt(&encrypted, &other_keys).unwrap_err().to_string();
        assert!(
            error.contains("none of the given age keys") && error.contains(&recipient),
            "{error}"
        );

        let (recipient, keys) = key_pair();
        let encrypted = encrypt(SAMPLE, &[recipient]).unwrap();
        // A plain (_unencrypted) value is still covered by the MAC.
        let tampered =
            encrypted.replace("PUBLIC_unencrypted=visible", "PUBLIC_unencrypted=changed");
        let error = decrypt(&tampered, &keys).unwrap_err().to_string();
        assert!(error.contains("MAC mismatch"), "{error}");
    }

    #[test]
    fn several_recipients_can_each_decrypt() {
        let (first, first_keys) = key_pair();
        let (second, second_keys) = key_pair();
        let encrypted = encrypt(SAMPLE, &[first, second]).unwrap();
        assert_eq!(decrypt(&encrypted, &first_keys).unwrap(), SAMPLE);
        assert_eq!(decrypt(&encrypted, &second_keys).unwrap(), SAMPLE);
    }

    #[test]
    fn bad_input_is_named() {
        assert!(parse("GOOD=1\nno equals sign\n")
            .unwrap_err()
            .to_string()
            .contains("line 2"));
        assert!(encrypt("A=1\n", &["not-a-key".into()])
            .unwrap_err()
            .to_string()
            .contains("not-a-key"));
        assert!(decrypt("A=1\n", &[])
            .unwrap_err()
            .to_string()
            .contains("not a SOPS"));
    }

    #[test]
    fn recipients_come_from_the_env_rule_of_sops_yaml() {
        let yaml = "creation_rules:\n  - path_regex: \\.yaml$\n    age: age1other\n  - path_regex: \\.env(\\.enc)?$\n    age: age1one, age1two\n";
        assert_eq!(
            recipients_from_sops_yaml(yaml).unwrap(),
            ["age1one", "age1two"]
        );
    }
}

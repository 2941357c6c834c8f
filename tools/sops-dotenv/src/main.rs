//! `sops-dotenv`: `.env` ⇄ `.env.enc` in SOPS's dotenv format with age, for machines
//! without `sops`. The scripts/secrets-*.sh call `sops` when it is installed and this
//! tool otherwise; either opens the other's files.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "sops-dotenv",
    version,
    about = "SOPS dotenv files with age keys, without sops"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Encrypt a plain dotenv file for the age recipients of .sops.yaml (or --age).
    Encrypt {
        input: PathBuf,
        #[arg(long, short)]
        output: PathBuf,
        /// Recipient(s), comma-separated; default: the .env rule of --config.
        #[arg(long)]
        age: Option<String>,
        #[arg(long, default_value = ".sops.yaml")]
        config: PathBuf,
    },
    /// Decrypt a SOPS dotenv file with the age keys in --key (checks the MAC).
    Decrypt {
        input: PathBuf,
        #[arg(long, short)]
        output: PathBuf,
        #[arg(long, env = "SOPS_AGE_KEY_FILE", default_value = ".sops/age-key.txt")]
        key: PathBuf,
    },
    /// Create an age key file (mode 0600) and print its public key.
    Keygen { output: PathBuf },
}

fn main() -> ExitCode {
    match run(Cli::parse().command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("sops-dotenv: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Writes through a temp file in the same folder, so a failure leaves `path` as it was.
fn write_atomically(path: &Path, contents: &str, private: bool) -> Result<()> {
    let folder = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut temp = tempfile_in(folder)?;
    temp.1.write_all(contents.as_bytes())?;
    temp.1.sync_all()?;
    if private {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&temp.0, std::fs::Permissions::from_mode(0o600))?;
    }
    std::fs::rename(&temp.0, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

fn tempfile_in(folder: &Path) -> Result<(PathBuf, std::fs::File)> {
    for attempt in 0..100u32 {
        let path = folder.join(format!(".sops-dotenv-{}-{attempt}.tmp", std::process::id()));
        if let Ok(file) = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            return Ok((path, file));
        }
    }
    anyhow::bail!("cannot create a temp file in {}", folder.display())
}

fn run(command: Command) -> Result<()> {
    match command {
        Command::Encrypt {
            input,
            output,
            age,
            config,
        } => {
            let recipients = match age {
                Some(list) => list
                    .split(',')
                    .map(|r| r.trim().to_string())
                    .filter(|r| !r.is_empty())
                    .collect(),
                None => sops_dotenv::recipients_from_sops_yaml(&read(&config)?)
                    .with_context(|| format!("no recipients in {}", config.display()))?,
            };
            let encrypted = sops_dotenv::encrypt(&read(&input)?, &recipients)
                .with_context(|| format!("cannot encrypt {}", input.display()))?;
            write_atomically(&output, &encrypted, false)
        }
        Command::Decrypt { input, output, key } => {
            let keys = sops_dotenv::identities(&read(&key)?)
                .with_context(|| format!("in {}", key.display()))?;
            let plain = sops_dotenv::decrypt(&read(&input)?, &keys)
                .with_context(|| format!("cannot decrypt {}", input.display()))?;
            write_atomically(&output, &plain, true)
        }
        Command::Keygen { output } => {
            use age::secrecy::ExposeSecret;
            if output.exists() {
                anyhow::bail!("{} exists; refusing to overwrite a key", output.display());
            }
            if let Some(folder) = output.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(folder)?;
            }
            let identity = age::x25519::Identity::generate();
            let public = identity.to_public().to_string();
            let text = format!(
                "# created: {}\n# public key: {public}\n{}\n",
                chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ"),
                identity.to_string().expose_secret()
            );
            write_atomically(&output, &text, true)?;
            println!("{public}");
            Ok(())
        }
    }
}

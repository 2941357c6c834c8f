//! Layer 3b: `memory.md`, the assistant's own notebook, in every system prompt. Seeded
//! with seed 000's sections, at most `MEMORY_DOCUMENT_MAX_SIZE` characters, the previous
//! version kept as `memory.md.bak` at each write, written by temp file + rename.

use std::io::Write;
use std::path::{Path, PathBuf};

pub(crate) const SECTIONS: [&str; 5] = [
    "Household",
    "Destinations & Distances",
    "Preferences & Habits",
    "Patterns & Rules",
    "Important Notes",
];

pub(crate) struct Notes {
    path: PathBuf,
    max_chars: usize,
}

impl Notes {
    pub(crate) fn new(dir: &Path, max_chars: usize) -> Self {
        Self {
            path: dir.join("memory.md"),
            max_chars,
        }
    }

    /// The notebook; seeded when missing. Blocking: call off the async workers.
    pub(crate) fn read(&self) -> std::io::Result<String> {
        match std::fs::read_to_string(&self.path) {
            Ok(text) => Ok(text),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let seeded = seed();
                self.write(&seeded)?;
                Ok(seeded)
            }
            Err(error) => Err(error),
        }
    }

    /// Replaces one section's text. Refused (nothing written) for an unknown section
    /// or when the notebook would outgrow its cap: the reason goes back to the model.
    pub(crate) fn update_section(&self, section: &str, content: &str) -> Result<usize, String> {
        let Some(section) = SECTIONS
            .iter()
            .find(|known| known.eq_ignore_ascii_case(section.trim()))
        else {
            return Err(format!(
                "unknown section '{section}'; use one of: {}",
                SECTIONS.join(", ")
            ));
        };
        let current = self
            .read()
            .map_err(|error| format!("cannot read memory.md: {error}"))?;
        let updated = replace_section(&current, section, content.trim());
        let chars = updated.chars().count();
        if chars > self.max_chars {
            return Err(format!(
                "memory.md would be {chars} characters, the limit is {}: shorten or merge notes",
                self.max_chars
            ));
        }
        if current.trim() != "" {
            std::fs::write(self.path.with_extension("md.bak"), &current)
                .map_err(|error| format!("cannot keep memory.md.bak: {error}"))?;
        }
        self.write(&updated)
            .map_err(|error| format!("cannot write memory.md: {error}"))?;
        Ok(chars)
    }

    fn write(&self, text: &str) -> std::io::Result<()> {
        let folder = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(folder)?;
        let mut temp = tempfile::NamedTempFile::new_in(folder)?;
        temp.write_all(text.as_bytes())?;
        temp.as_file().sync_all()?;
        temp.persist(&self.path).map_err(|error| error.error)?;
        Ok(())
    }
}

fn seed() -> String {
    let mut text = String::from("# Memory Notes\n");
    for section in SECTIONS {
        text.push_str(&format!("\n## {section}\n"));
    }
    text
}

/// The notebook with `section`'s body replaced (the section added when a person
/// deleted it).
fn replace_section(document: &str, section: &str, content: &str) -> String {
    let heading = format!("## {section}");
    let mut out = Vec::new();
    let mut skipping = false;
    let mut replaced = false;
    for line in document.lines() {
        if line.trim().eq_ignore_ascii_case(&heading) {
            out.push(heading.clone());
            if !content.is_empty() {
                out.push(content.to_string());
            }
            skipping = true;
            replaced = true;
            continue;
        }
        if skipping && line.starts_with("## ") {
            skipping = false;
            out.push(String::new());
        }
        if !skipping {
            out.push(line.to_string());
        }
    }
    if !replaced {
        out.push(String::new());
        out.push(heading);
        out.push(content.to_string());
    }
    let mut text = out.join("\n");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_section_is_replaced_the_old_version_kept_and_the_cap_enforced() {
        let dir = tempfile::tempdir().unwrap();
        let notes = Notes::new(dir.path(), 300);
        assert!(notes
            .read()
            .unwrap()
            .contains("## Destinations & Distances"));
        notes
            .update_section("destinations & distances", "- Aachen: 80 km one way")
            .unwrap();
        let text = notes.read().unwrap();
        assert!(
            text.contains("## Destinations & Distances\n- Aachen: 80 km one way\n\n## Preferences"),
            "{text}"
        );
        assert!(std::fs::read_to_string(dir.path().join("memory.md.bak"))
            .unwrap()
            .contains("## Household"));
        let too_long = "x".repeat(400);
        let error = notes.update_section("Household", &too_long).unwrap_err();
        assert!(error.contains("the limit is 300"), "{error}");
        assert_eq!(
            notes.read().unwrap(),
            text,
            "a refused write changes nothing"
        );
        assert!(notes
            .update_section("Shopping", "milk")
            .unwrap_err()
            .contains("unknown section"));
    }
}

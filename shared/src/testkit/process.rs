//! Service binaries started by tests.

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::path::Path;
use std::process::{Child, Command, Output};

/// A spawned service process, killed on drop so that a failing test leaves nothing running.
pub struct ServiceProcess(Option<Child>);

impl ServiceProcess {
    pub fn spawn(command: &mut Command) -> Self {
        Self(Some(
            command.spawn().expect("cannot start the service binary"),
        ))
    }

    fn child(&self) -> &Child {
        self.0.as_ref().expect("the process was already reaped")
    }

    pub fn id(&self) -> u32 {
        self.child().id()
    }

    pub fn signal(&self, signal: Signal) {
        kill(Pid::from_raw(self.id() as i32), signal).expect("cannot signal the service");
    }

    /// SIGKILL, and reap it: no chance to say goodbye.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits for it to exit and returns what it wrote to the pipes it was given.
    pub fn wait_with_output(mut self) -> Output {
        let child = self.0.take().expect("the process was already reaped");
        child
            .wait_with_output()
            .expect("cannot wait for the service")
    }

    /// SIGTERM, then waits.
    pub fn terminate(self) -> Output {
        self.signal(Signal::SIGTERM);
        self.wait_with_output()
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Fails unless every variable `binary settings` lists is documented in `env_example`
/// (as `NAME=` or `# NAME=` at the start of a line).
pub fn assert_settings_documented(binary: &str, env_example: &Path) {
    let output = Command::new(binary)
        .arg("settings")
        .env_clear()
        .output()
        .unwrap();
    assert!(output.status.success(), "{binary} settings failed");
    let names = String::from_utf8(output.stdout).unwrap();
    assert!(names.lines().count() > 10, "{names}");
    let documented = std::fs::read_to_string(env_example).unwrap();
    let missing: Vec<&str> = names
        .lines()
        .filter(|name| {
            !documented.lines().any(|line| {
                line.trim_start_matches("# ")
                    .starts_with(&format!("{name}="))
            })
        })
        .collect();
    assert!(missing.is_empty(), "not in .env.example: {missing:?}");
}

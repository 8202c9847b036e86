//! Which RDP client opens a session through the tunnel, and with which arguments. Nothing is
//! started here (that is `run`); this only decides.

use crate::plan::Os;
use crate::profile::raw::Client;
use crate::profile::resolve::Profile;

/// A chosen client: the program and how it takes the .rdp file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCmd {
    pub program: String,
    /// FreeRDP 3 (`xfreerdp3`, `sdl-freerdp3`): has the Entra (AAD) mode.
    pub freerdp3: bool,
}

/// Every program `choose` can pick (for the "missing client" hint).
pub const PROGRAMS: [&str; 7] = [
    "xfreerdp3",
    "sdl-freerdp3",
    "xfreerdp",
    "sdl-freerdp",
    "remmina",
    "mstsc",
    "open",
];

/// Linux, `client: auto`: the first of these on PATH.
pub const LINUX_AUTO: [&str; 4] = ["xfreerdp3", "sdl-freerdp3", "xfreerdp", "remmina"];

/// Debian/Ubuntu packages and other sources of a client, for the "missing" hint.
pub const INSTALL_HINT: &str = "install FreeRDP 3 (Debian/Ubuntu: apt install freerdp3-x11; Fedora: dnf install freerdp), or Remmina; on macOS the Windows App; or set `client: none` and connect with any client";

fn on_path(p: &str) -> bool {
    crate::process::which(p).is_some()
}

/// The client for a profile on `os`. `lookup`: look on PATH (only for this machine's OS).
/// None: no client (`client: none`), the tunnel is held open.
pub fn choose(profile: &Profile, os: Os, lookup: bool) -> Option<ClientCmd> {
    let first = |names: &[&str]| -> String {
        let found = if lookup {
            names.iter().find(|n| on_path(n))
        } else {
            None
        };
        found.unwrap_or(&names[0]).to_string()
    };
    let program = match profile.client {
        Client::None => return None,
        Client::Auto => match os {
            Os::Macos => "open".to_string(),
            Os::Windows => "mstsc".to_string(),
            Os::Linux => first(&LINUX_AUTO),
        },
        Client::Mstsc => "mstsc".into(),
        Client::Xfreerdp => first(&["xfreerdp3", "xfreerdp"]),
        Client::SdlFreerdp => first(&["sdl-freerdp3", "sdl-freerdp"]),
        Client::Remmina => "remmina".into(),
        Client::Open => "open".into(),
    };
    let freerdp3 = program.ends_with("freerdp3");
    Some(ClientCmd { program, freerdp3 })
}

/// What `--configure` (sign in as another user) means with a client other than mstsc, where
/// it is `/edit`: nothing is passed, and this says what to do instead.
pub fn configure_note(program: &str) -> String {
    let instead = match program {
        "open" => "choose the user in the Windows App (edit the PC, or its user account)",
        "remmina" => "Remmina asks for the user when the file has none: leave `username` out",
        _ => {
            "FreeRDP asks who to sign in as when the profile has no `username` (change or remove it in your override); with Entra, FreeRDP 3 shows the Microsoft sign-in each time, where another account can be chosen"
        }
    };
    format!(
        "--configure does nothing with `{program}` (it opens mstsc's settings on Windows): {instead}"
    )
}

impl ClientCmd {
    /// Whether the program returns at once and the session lives on elsewhere (macOS `open`):
    /// then bprof keeps the tunnel open until Ctrl-C.
    pub fn detaches(&self) -> bool {
        self.program == "open"
    }

    /// The client's argv for an .rdp file.
    pub fn argv(&self, profile: &Profile, file: &str, configure: bool) -> Vec<String> {
        let mut argv = vec![self.program.clone()];
        match self.program.as_str() {
            "mstsc" => {
                if configure {
                    argv.push("/edit".into());
                }
                argv.push(file.into());
            }
            "remmina" => {
                argv.push("-c".into());
                argv.push(file.into());
            }
            "open" => argv.push(file.into()),
            _ => {
                // FreeRDP: the file first; options after it override the file
                argv.push(file.into());
                if self.freerdp3 && profile.enable_mfa {
                    argv.push("/sec:aad".into());
                    // Entra needs the VM's device name, not the tunnel's 127.0.0.1 (FreeRDP 3.17+)
                    if let Some(name) = profile
                        .vm
                        .computer_name
                        .as_ref()
                        .or(profile.vm.name.as_ref())
                    {
                        argv.push(format!("/server-name:{name}"));
                    }
                }
            }
        }
        argv
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aad_only_for_freerdp3_and_mstsc_edit_for_configure() {
        let v3 = ClientCmd {
            program: "xfreerdp3".into(),
            freerdp3: true,
        };
        let v2 = ClientCmd {
            program: "xfreerdp".into(),
            freerdp3: false,
        };
        let mstsc = ClientCmd {
            program: "mstsc".into(),
            freerdp3: false,
        };
        // a minimal resolved profile is built through the loader in the integration tests;
        // here only the argv shape matters, so use the bundled-example shape
        let set = crate::profile::load::load(&crate::profile::load::Sources {
            paths: vec![std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles")],
            ..Default::default()
        })
        .unwrap();
        let p = crate::profile::resolve::resolve(&set, "prod-jumpbox").unwrap();
        assert_eq!(
            v3.argv(&p, "f.rdp", false),
            ["xfreerdp3", "f.rdp", "/sec:aad", "/server-name:JUMPBOX01"]
        );
        assert_eq!(v2.argv(&p, "f.rdp", false), ["xfreerdp", "f.rdp"]);
        assert_eq!(mstsc.argv(&p, "f.rdp", true), ["mstsc", "/edit", "f.rdp"]);
        assert_eq!(choose(&p, Os::Macos, false).unwrap().program, "open");
        assert_eq!(choose(&p, Os::Linux, false).unwrap().program, "xfreerdp3");
    }
}

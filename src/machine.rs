//! What bprof knows of the machine and the person it runs for, read once from the environment
//! by the CLI (`cli::settings`) and passed down: no module below `cli` reads the environment
//! (the PATH lookup in `process` aside). Plain data, on the ground floor, so that every layer
//! can be handed it.

use std::path::PathBuf;

/// What the Azure client takes from the person's environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Azure {
    /// `BPROF_ARM_ENDPOINT` (checked when bprof starts); None: the public cloud's.
    pub arm_endpoint: Option<String>,
    /// Where az keeps `azureProfile.json`: `AZURE_CONFIG_DIR`, else `~/.azure`.
    pub az_config_dir: Option<PathBuf>,
    /// `HTTPS_PROXY` (else `https_proxy`, `ALL_PROXY`, `all_proxy`).
    pub proxy: Option<String>,
    /// `NO_PROXY` (else `no_proxy`).
    pub no_proxy: Option<String>,
    /// The extra CA bundles: (`SSL_CERT_FILE` or `REQUESTS_CA_BUNDLE`, the path it names).
    pub bundles: Vec<(String, PathBuf)>,
    /// `BPROF_AZ`: the az program to run (default: `az` from PATH).
    pub az: Option<PathBuf>,
}

/// What a plan needs of the machine it runs on, from the CLI's settings (nothing below the CLI
/// reads the environment).
#[derive(Debug, Clone, PartialEq)]
pub struct Host {
    /// How long `run` waits for az's tunnel to accept connections (`BPROF_TUNNEL_TIMEOUT`).
    pub tunnel_timeout: std::time::Duration,
    /// The tunnel engine's runtime threads: 2 runs a connection's two directions in parallel
    /// (`BPROF_TUNNEL_WORKERS`, else chosen by the machine's cores).
    pub tunnel_workers: usize,
    /// The person's own directory for the temporary .rdp files of `run`.
    pub rdp_dir: std::path::PathBuf,
    /// bprof's own absolute path (for the ProxyCommand that runs `bprof proxy`).
    pub bprof: String,
    /// The person's state directory for bprof (`$XDG_STATE_HOME/bprof`, else
    /// `~/.local/state/bprof`; `%LOCALAPPDATA%\bprof` on Windows): Entra ssh keys.
    pub state_dir: std::path::PathBuf,
    /// The Azure client's settings.
    pub azure: Azure,
}

impl Default for Host {
    /// For plans that are shown, not run (validate, doctor, the tests): the defaults.
    fn default() -> Host {
        Host {
            tunnel_timeout: std::time::Duration::from_secs(30),
            tunnel_workers: 1,
            rdp_dir: std::path::PathBuf::from("bprof-rdp"),
            bprof: "bprof".into(),
            state_dir: std::path::PathBuf::from("~/.local/state/bprof"),
            azure: Azure::default(),
        }
    }
}

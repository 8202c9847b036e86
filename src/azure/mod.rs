//! What az and Azure know: `signin` reads az's local profile (who is signed in where); `token`
//! gets the ARM access token from az; `tls` and `http` are bprof's own HTTPS; `arm` is Azure
//! Resource Manager; `resources` the reads around a connection (VM, extensions, role
//! assignments, NIC, virtual network); `bastion` is the bastion's data plane (`developer`: the Developer SKU's broker; `gateway`: the RD
//! gateway's .rdp file); `known` is the
//! table of az's and the service's known failures and their hints. The features that use them
//! (`tunnel`, `doctor`, `import`) are rooms of their own above this one: nothing here uses them.
pub mod arm;
pub mod bastion;
pub mod developer;
pub mod gateway;
pub mod http;
pub mod known;
pub mod resources;
pub mod signin;
pub mod tls;
pub mod token;

use crate::process::{Exit, ProcessError, Signals};

/// What the Azure client takes from the person's environment (the CLI reads it once).
pub use crate::machine::Azure as Config;

/// A single-threaded tokio runtime for bprof's network work (`what` names it in the error).
pub fn runtime(what: &str) -> Result<tokio::runtime::Runtime, AzureError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| AzureError::Io {
            what: what.to_string(),
            why: e.to_string(),
        })
}

/// Resolves with the signal's number once bprof has received one (Ctrl-C).
pub async fn until_signal(signals: &Signals) -> i32 {
    loop {
        if let Some(signal) = signals.received() {
            return signal;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Errors of this layer. Texts from Azure in them are bounded; they are escaped where printed.
/// The one hint for an az that is not there, wherever it is missed (run, doctor, import,
/// proxy): bprof gets every access token from az.
pub const AZ_MISSING: &str = "install the Azure CLI (https://learn.microsoft.com/cli/azure/install-azure-cli), or set BPROF_AZ to its path";

#[derive(Debug, thiserror::Error)]
pub enum AzureError {
    #[error(transparent)]
    Process(#[from] ProcessError),
    #[error("`az account get-access-token` {exit}{}", .said.as_ref().map(|s| format!(": {s}")).unwrap_or_default())]
    TokenFailed {
        exit: Exit,
        /// az's own message, when bprof read it (doctor) rather than leaving it on the
        /// person's stderr.
        said: Option<String>,
    },
    #[error("az's answer for the access token cannot be used: {0}")]
    TokenOutput(String),
    #[error("{var} names {path}, which cannot be used: {why}")]
    Bundle {
        var: String,
        path: String,
        why: String,
    },
    #[error("TLS cannot be set up: {0}")]
    TlsSetup(String),
    #[error("the TLS handshake with {host} failed: {why}")]
    Tls { host: String, why: String },
    #[error("HTTPS_PROXY cannot be used: {why}")]
    ProxySetting { why: String },
    #[error("BPROF_ARM_ENDPOINT={value} cannot be used: {why}")]
    ArmEndpoint { value: String, why: String },
    #[error("cannot connect to {what}: {why}")]
    Connect { what: String, why: String },
    #[error("{what} took longer than {secs} s")]
    Timeout { what: String, secs: u64 },
    #[error("{what}: {why}")]
    Io { what: String, why: String },
    #[error("{what}: {why}")]
    Protocol { what: String, why: String },
    #[error("{what}: ARM answered {status}{}: {message}", .code.as_ref().map(|c| format!(" {c}")).unwrap_or_default())]
    Arm {
        what: String,
        status: u16,
        code: Option<String>,
        message: String,
    },
    #[error("the {what} `{value}` cannot be used in an Azure request: {rule}")]
    Name {
        what: String,
        value: String,
        rule: String,
    },
    #[error("the bastion refused the session: {status}{}", if .message.is_empty() { String::new() } else { format!(" {message}") })]
    Refused {
        status: u16,
        message: String,
        hint: Option<String>,
    },
    #[error("the bastion `{bastion}` cannot carry a native tunnel: {why}")]
    Unusable { bastion: String, why: String },
}

impl AzureError {
    /// bprof's exit code for it: an interruption as the signal says, else 69 (Azure, az or the
    /// network did not give what was needed).
    pub fn exit_code(&self) -> i32 {
        match self {
            AzureError::Process(e) => e.exit_code(),
            _ => crate::exit::UNAVAILABLE,
        }
    }

    /// What to do about it, when bprof knows.
    pub fn hint(&self) -> Option<String> {
        match self {
            AzureError::TokenFailed { said: None, .. } => Some("az's own message is above; `az login` signs in again".into()),
            AzureError::TokenFailed { said: Some(_), .. } => Some("`az login` signs in again".into()),
            AzureError::Tls { .. } => Some("behind a TLS-inspecting proxy, point REQUESTS_CA_BUNDLE (or SSL_CERT_FILE) at its CA certificate (PEM)".into()),
            AzureError::Connect { .. } | AzureError::Timeout { .. } => Some("check the network; behind a proxy set HTTPS_PROXY (and NO_PROXY)".into()),
            AzureError::Arm { status: 401 | 403, .. } => Some("`az account show` says who az is signed in as; `az login --tenant TENANT` signs in to the bastion's tenant".into()),
            AzureError::Arm { status: 404, .. } => Some("check the bastion's subscription, resource_group and name in the profile".into()),
            AzureError::Refused { hint, .. } => hint.as_deref().map(|h| known::fill(h, "", "")),
            AzureError::Process(ProcessError::Missing { .. }) => Some(AZ_MISSING.into()),
            _ => None,
        }
    }
}

//! Windows' RDP through the bastion's RD gateway: the gateway's .rdp file fetched with the
//! plan's token (held in memory, never printed), then merged with the profile's settings and
//! written by the write-rdp step for mstsc alone.

use super::*;
use crate::azure::bastion::{Located, Route};
use crate::azure::gateway::GatewayFile;
use crate::plan::gateway::Gateway;

/// The gateway's file and the host it came from (its gateway must be that host's).
pub(super) struct Fetched {
    file: GatewayFile,
    host: String,
}

/// Fetches the gateway's file: the bastion's host (the profile's `dns_name` or ARM's read),
/// then `GET /api/rdpfile` with the token. Ctrl-C ends the wait.
pub(super) fn fetch(
    plan: &Plan,
    g: &Gateway,
    token: &crate::azure::token::AccessToken,
    signals: &Signals,
) -> Result<Fetched, RunError> {
    let net = crate::azure::http::Net::from_config(&plan.host.azure)?;
    let rt = crate::azure::runtime("fetching the gateway file")?;
    let at = Located {
        subscription: &g.subscription,
        resource_group: &g.resource_group,
        name: &g.bastion,
        dns_name: g.dns_name.as_deref(),
    };
    let work = async {
        let route =
            crate::azure::bastion::route(&net, &plan.host.azure, &token.secret, &at, false).await?;
        let dp = match route {
            Route::Host(dp) => dp,
            Route::Broker(_) => {
                return Err(AzureError::Unusable {
                    bastion: g.bastion.clone(),
                    why: "it is the Developer SKU, which has no RD gateway: say `sku: developer` on the bastion in the profile, and bprof opens its own tunnel and mstsc through it".into(),
                });
            }
        };
        let file = crate::azure::gateway::rdp_file(
            &net,
            &dp,
            &g.vm_id,
            g.resource_port,
            g.entra,
            &token.secret,
        )
        .await?;
        Ok(Fetched {
            file,
            host: dp.endpoint().host.clone(),
        })
    };
    let result = rt.block_on(async {
        tokio::select! {
            r = work => Some(r),
            _ = crate::azure::until_signal(signals) => None,
        }
    });
    match result {
        Some(r) => Ok(r?),
        None => Err(RunError::Process(ProcessError::Interrupted {
            signal: signals.received().unwrap_or(2),
        })),
    }
}

/// Writes the gateway's file merged with the profile's `settings` as the run's private .rdp;
/// says, once, what of the gateway's file was left out (names only).
pub(super) fn write(
    fetched: Fetched,
    planned: &Path,
    settings: &[String],
) -> Result<TempRdp, RunError> {
    let merged = crate::plan::gateway::merge(fetched.file.expose(), settings, &fetched.host)
        .map_err(|why| AzureError::Protocol {
            what: format!("the gateway file from {}", fetched.host),
            why,
        })?;
    if !merged.left_out.is_empty() {
        crate::terminal::eprintln(&format!(
            "bprof: left out of the gateway's .rdp file (neither connection nor display settings): {}",
            merged.left_out.join(", ")
        ));
    }
    let bytes = crate::plan::rdp::encode(&merged.lines);
    let written = TempRdp::create(planned, &bytes);
    // they held the gateway token
    crate::azure::token::wipe(bytes);
    for line in merged.lines {
        crate::azure::token::wipe(line.into_bytes());
    }
    Ok(written?)
}

//! One connection's bastion session: where the data plane is, the token, `POST /api/tokens`,
//! the websocket, the pump, the close and the `DELETE`.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::watch;

use super::pump::pump;
use super::{Config, STOP_GRACE, Shared, say};
use crate::azure::AzureError;
use crate::azure::bastion::{self, DataPlane, Route};
use crate::azure::developer;
use crate::azure::http::Net;
use crate::azure::token::{AccessToken, TokenSource};
use crate::process::Signals;

/// Where sessions are asked for (see [`bastion::route`]).
async fn route(net: &Net, tokens: &TokenSource, cfg: &Config) -> Result<Route, AzureError> {
    let t = &cfg.tunnel;
    let at = bastion::Located {
        subscription: &t.subscription,
        resource_group: &t.resource_group,
        name: &t.bastion,
        dns_name: t.dns_name.as_deref(),
    };
    let ip_target = matches!(t.target, crate::plan::TunnelTarget::Ip(_));
    // held already (`prepare` asked for it first): no az call
    let token = tokens.get()?;
    bastion::route(net, &cfg.azure, &token.secret, &at, ip_target).await
}

/// The engine's runtime: one thread, or `workers` threads (a connection's two directions run
/// in parallel).
fn runtime(workers: usize) -> Result<tokio::runtime::Runtime, AzureError> {
    const WHAT: &str = "starting the tunnel engine";
    if workers <= 1 {
        return crate::azure::runtime(WHAT);
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name("tunnel-worker")
        .enable_all()
        .build()
        .map_err(|e| AzureError::Io {
            what: WHAT.to_string(),
            why: e.to_string(),
        })
}

/// The token (one az process unless given), a runtime, the network and the data plane.
pub(super) fn prepare(
    cfg: &Config,
    signals: &Signals,
    token: Option<AccessToken>,
) -> Result<(tokio::runtime::Runtime, Net, TokenSource, Route), AzureError> {
    let net = Net::from_config(&cfg.azure)?;
    let tokens = TokenSource::new(
        &cfg.tunnel.subscription,
        signals.clone(),
        token,
        cfg.azure.az.clone(),
    );
    tokens.get()?;
    let rt = runtime(cfg.workers)?;
    let route = rt.block_on(route(&net, &tokens, cfg))?;
    Ok((rt, net, tokens, route))
}

/// Where this session is asked for: the bastion's host, or the data pod the Developer SKU's
/// broker names for it.
async fn data_plane(sh: &Shared, token: &AccessToken) -> Result<DataPlane, AzureError> {
    match &sh.route {
        Route::Host(dp) => Ok(dp.clone()),
        Route::Broker(broker) => {
            let port = sh.cfg.tunnel.resource_port;
            developer::data_pod(&sh.net, broker, &sh.target, port, &token.secret).await
        }
    }
}

/// `POST /api/tokens`, naming an open session of the listener (not a pod's), and once more on
/// its own when the service does not take the overlap. A stop while it is asked for lets the
/// answer arrive (briefly): a session the service granted is deleted like any other. `None`:
/// stopped before any answer; else the answer and whether a stop came meanwhile.
async fn create(
    sh: &Shared,
    dp: &DataPlane,
    token: &AccessToken,
    stop: &mut watch::Receiver<bool>,
) -> Option<(Result<bastion::Grant, AzureError>, bool)> {
    let previous = sh
        .open
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .last()
        .filter(|_| !dp.is_pod())
        .map(|g| (g.auth_token.clone(), g.node_id.clone()));
    let port = sh.cfg.tunnel.resource_port;
    let named = previous.as_ref().map(|(a, n)| (a.as_str(), n.as_str()));
    let create = bastion::create_session(&sh.net, dp, &sh.target, port, &token.secret, named);
    let mut stopping = false;
    let created = {
        tokio::pin!(create);
        tokio::select! {
            r = &mut create => r,
            _ = stop.changed() => {
                stopping = true;
                tokio::time::timeout(STOP_GRACE / 2, &mut create).await.ok()?
            }
        }
    };
    // an overlap the service does not take (the session it named may be ending): once more
    // on its own
    let created = match created {
        Err(AzureError::Refused { status, .. })
            if previous.is_some()
                && (400..500).contains(&status)
                && ![401, 403].contains(&status) =>
        {
            bastion::create_session(&sh.net, dp, &sh.target, port, &token.secret, None).await
        }
        other => other,
    };
    Some((created, stopping))
}

/// One session over a local byte stream (`r`, `w`): a token, `POST /api/tokens`, the
/// websocket, the pump, the close, the DELETE. A refusal is said on stderr (and returned).
pub(super) async fn carry<R, W>(
    r: R,
    w: W,
    who: String,
    sh: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) -> Option<AzureError>
where
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let token = {
        let sh = Arc::clone(&sh);
        match tokio::task::spawn_blocking(move || sh.tokens.get()).await {
            Ok(Ok(t)) => t,
            Ok(Err(e)) => {
                say(&format!("{who} is closed: {e}"));
                return Some(e);
            }
            Err(_) => return None,
        }
    };
    // the Developer SKU's broker names this session's data pod; a pod's sessions stand alone
    let dp = match data_plane(&sh, &token).await {
        Ok(dp) => dp,
        Err(e) => {
            sh.stats.failed_sessions.fetch_add(1, Ordering::SeqCst);
            refused(&who, &e, &sh.cfg);
            return Some(e);
        }
    };
    let (created, stopping) = match create(&sh, &dp, &token, &mut stop).await {
        Some(c) => c,
        None => return None,
    };
    drop(token);
    let grant = match created {
        Ok(g) => g,
        Err(e) => {
            sh.stats.failed_sessions.fetch_add(1, Ordering::SeqCst);
            refused(&who, &e, &sh.cfg);
            return Some(e);
        }
    };
    sh.stats.sessions.fetch_add(1, Ordering::SeqCst);
    sh.open
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(grant.clone());
    let ws = if stopping {
        None
    } else {
        tokio::select! {
            r = bastion::connect_websocket(&sh.net, &dp, &grant) => Some(r),
            _ = stop.changed() => None,
        }
    };
    let mut failed = None;
    match ws {
        Some(Ok(ws)) => pump(r, w, ws, &mut stop).await,
        Some(Err(e)) => {
            sh.stats.failed_sessions.fetch_add(1, Ordering::SeqCst);
            refused(&who, &e, &sh.cfg);
            failed = Some(e);
        }
        None => {}
    }
    // no longer a session to overlap with
    sh.open
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .retain(|g| g.auth_token != grant.auth_token);
    match bastion::delete_session(&sh.net, &dp, &grant).await {
        Ok(()) => {
            sh.stats.deleted.fetch_add(1, Ordering::SeqCst);
        }
        Err(e) => say(&format!(
            "the session of {who} may still be open on the bastion: its DELETE failed: {e}"
        )),
    }
    failed
}

fn refused(who: &str, e: &AzureError, cfg: &Config) {
    say(&format!("{who} is closed: {e}"));
    let h = match e {
        AzureError::Refused { hint: Some(h), .. } => {
            Some(crate::azure::known::fill(h, &cfg.profile, &cfg.tenant))
        }
        e => e.hint(),
    };
    if let Some(h) = h {
        say(&format!("hint: {h}"));
    }
}

//! `bprof doctor`: what will make a connection fail, found before it fails, each with its fix.
//!
//! Checks of this machine ([`local`]): az and its version, the extensions az's own commands need,
//! the tenants az is signed in to (its profile file, no az call), an RDP client, and TLS to ARM
//! (the native engine's path, through the proxy, with the configured CA bundles). Checks of each
//! profile ([`profile`]: the reads, the account, the token and the bastion; [`vm`]: the VM and
//! the way to it), through ARM REST: one az process for the token of each subscription,
//! then the reads in as few rounds as their dependencies allow:
//! 1. with the token: the bastion, the VM (instance view), its extensions and the role
//!    assignments that reach the principal (Entra profiles);
//! 2. with those answers: the VM's network interface, the bastion's virtual network (read ahead,
//!    whether or not the VM turns out to be in another one: a round saved for one read) and TLS
//!    to the bastion host.
//!
//! `az version` and TLS to ARM run while az gets the token. Identical reads of several profiles
//! are made once. Each read is bounded by [`CALL_TIMEOUT`]; a read that fails makes the checks
//! that need it skip (or fail, when the failure is the finding) with the reason, and never stops
//! the others. Text from Azure is bounded here and escaped where it is printed.

mod local;
mod profile;
mod ssh;
mod vm;

use std::collections::HashMap;
use std::time::Duration;

use futures_util::future::join_all;
use serde_json::Value;

use crate::azure::AzureError;
use crate::azure::arm::Arm;
use crate::azure::http::{Endpoint, Net, bounded};
use crate::azure::signin::AzProfile;
use crate::azure::token::{self, AccessToken};
use crate::plan::Os;
use crate::process::{ProcessError, Signals};
use crate::profile::resolve::Profile;

/// How long one ARM read (every page of it) or TLS probe may take in doctor: shorter than the
/// client's own 30 s, so that a hanging call costs the report 10 s, not half a minute.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// How a check came out. Ordered from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    Ok,
    Skip,
    Warn,
    Fail,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "fail",
            Status::Skip => "skip",
        }
    }
}

/// One check: what was seen, and the exact fix when there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub name: &'static str,
    pub status: Status,
    pub detail: String,
    pub fix: Option<String>,
    /// The profile it is about (None: this machine).
    pub profile: Option<String>,
}

impl Check {
    fn new(name: &'static str, status: Status, detail: impl Into<String>) -> Check {
        Check {
            name,
            status,
            detail: detail.into(),
            fix: None,
            profile: None,
        }
    }

    pub fn ok(name: &'static str, detail: impl Into<String>) -> Check {
        Check::new(name, Status::Ok, detail)
    }

    pub fn skip(name: &'static str, detail: impl Into<String>) -> Check {
        Check::new(name, Status::Skip, detail)
    }

    pub fn warn(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check::new(name, Status::Warn, detail).with_fix(fix)
    }

    pub fn fail(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check::new(name, Status::Fail, detail).with_fix(fix)
    }

    pub fn with_fix(mut self, fix: impl Into<String>) -> Check {
        self.fix = Some(fix.into());
        self
    }
}

/// What doctor checks.
pub struct Scope<'a> {
    /// The profiles named on the command line: checked through ARM.
    pub profiles: &'a [Profile],
    /// The profiles whose needs decide this machine's checks (extensions, RDP client): the
    /// named ones, or the whole set when none is named.
    pub considered: &'a [Profile],
    /// Whether `considered` is the whole set (for messages).
    pub whole_set: bool,
    pub os: Os,
    /// `BPROF_TUNNEL_ENGINE`, for profiles that do not say.
    pub engine: Option<crate::profile::raw::TunnelEngine>,
    /// The Azure client's settings (ARM endpoint, proxy, bundles, az).
    pub azure: &'a crate::azure::Config,
    /// The person's home directory (`~` in an `ssh_key`).
    pub home: Option<&'a std::path::Path>,
}

impl Scope<'_> {
    /// The plan options a connection of this scope is planned with.
    pub fn plan_options(&self) -> crate::plan::PlanOptions {
        crate::plan::PlanOptions {
            engine: self.engine,
            ..crate::plan::PlanOptions::for_os(self.os)
        }
    }
}

/// One ARM read: with the token of `subscription` (lower case), GET `target` (every page of a
/// list, as one array). A target that could not be built holds why.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Read {
    subscription: String,
    target: Result<String, String>,
    list: bool,
}

impl Read {
    fn get(subscription: &str, target: Result<String, AzureError>) -> Read {
        Read {
            subscription: subscription.to_ascii_lowercase(),
            target: target.map_err(|e| e.to_string()),
            list: false,
        }
    }

    fn list(subscription: &str, target: Result<String, AzureError>) -> Read {
        Read {
            list: true,
            ..Read::get(subscription, target)
        }
    }
}

/// Why a read gave nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Failure {
    /// ARM answered with an error (its code and message, bounded).
    Arm {
        status: u16,
        code: Option<String>,
        message: String,
    },
    /// No answer within [`CALL_TIMEOUT`].
    Timeout,
    /// Anything else (connection, TLS, a bad answer).
    Other(String),
}

impl Failure {
    fn of(e: AzureError) -> Failure {
        match e {
            AzureError::Arm {
                status,
                code,
                message,
                ..
            } => Failure::Arm {
                status,
                code,
                message,
            },
            AzureError::Timeout { .. } => Failure::Timeout,
            other => Failure::Other(bounded(&other.to_string(), 300)),
        }
    }

    fn status(&self) -> Option<u16> {
        match self {
            Failure::Arm { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// "ARM answered 403 AuthorizationFailed: ...", "no answer within 10 s", ...
    fn describe(&self) -> String {
        match self {
            Failure::Arm {
                status,
                code,
                message,
            } => {
                let code = code.as_ref().map(|c| format!(" {c}")).unwrap_or_default();
                if message.is_empty() {
                    format!("ARM answered {status}{code}")
                } else {
                    format!("ARM answered {status}{code}: {message}")
                }
            }
            Failure::Timeout => format!("ARM gave no answer within {} s", CALL_TIMEOUT.as_secs()),
            Failure::Other(why) => why.clone(),
        }
    }
}

/// What az's token says, once the reads are done (the token itself is not kept).
#[derive(Debug, Clone, PartialEq, Eq)]
struct TokenFacts {
    oid: Option<String>,
    upn: Option<String>,
    len: usize,
}

/// What `az version -o json` said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct AzVersion {
    version: Option<String>,
    extensions: Vec<(String, String)>,
}

/// Everything found, for the checks to judge.
struct Found {
    /// az's path, or why there is none.
    az: Result<String, String>,
    /// `az version`'s answer (None: az is missing).
    version: Option<Result<AzVersion, String>>,
    az_profile: AzProfile,
    /// TLS to ARM: how it went ("direct", "through the proxy ..."), or the error.
    tls_arm: Result<String, AzureError>,
    /// bprof's HTTPS cannot be set up at all (a bad bundle or proxy setting): why.
    no_net: Option<String>,
    /// By subscription (lower case): the token's facts, or why there is none.
    tokens: HashMap<String, Result<TokenFacts, String>>,
    reads: HashMap<Read, Result<Value, Failure>>,
    /// By bastion host (authority): how TLS with it went.
    tls: HashMap<String, Result<String, AzureError>>,
}

/// A read's answer as a check sees it.
enum Got<'a> {
    Value(&'a Value),
    Failed(&'a Failure),
    /// Not read: why (no token, not signed in, ...).
    Skipped(String),
}

impl Found {
    /// Why a subscription's reads were not made, if they were not.
    fn unread(&self, subscription: &str) -> Option<String> {
        if let Some(why) = &self.no_net {
            return Some(format!("bprof's HTTPS cannot be set up ({why})"));
        }
        match self.tokens.get(&subscription.to_ascii_lowercase()) {
            Some(Ok(_)) => None,
            Some(Err(_)) => Some("there is no ARM token (see check `token`)".into()),
            None if self.az.is_err() => Some("az is missing, so there is no ARM token".into()),
            None => Some(
                "az is not signed in to the bastion's subscription (see check `signed-in`)".into(),
            ),
        }
    }

    fn got(&self, read: &Read) -> Got<'_> {
        if let Some(why) = self.unread(&read.subscription) {
            return Got::Skipped(why);
        }
        match self.reads.get(read) {
            Some(Ok(v)) => Got::Value(v),
            Some(Err(f)) => Got::Failed(f),
            None => Got::Skipped("it was not read".into()),
        }
    }
}

/// Runs every check. Only an interruption (Ctrl-C) or a runtime that cannot start ends it with
/// an error; everything else is a check's status.
pub fn run(
    scope: &Scope,
    signals: &Signals,
    progress: &dyn Fn(&str),
) -> Result<Vec<Check>, AzureError> {
    let az = crate::process::resolve_program("az", scope.azure.az.as_deref())
        .map(|p| p.display().to_string())
        .map_err(|e| e.to_string());
    let az_profile = AzProfile::read(scope.azure);
    let rt = crate::azure::runtime("starting doctor's runtime")?;
    let gathered = rt.block_on(async {
        let watch = crate::azure::until_signal(signals);
        tokio::select! {
            found = gather(scope, az, az_profile, signals, progress) => Ok(found),
            signal = watch => Err(AzureError::Process(ProcessError::Interrupted { signal })),
        }
    });
    // the az children stop by themselves on a signal (their waits pass it on)
    rt.shutdown_timeout(Duration::from_secs(5));
    let found = gathered?;
    let mut checks = local::checks(scope, &found);
    checks.push(ssh::ssh_client(scope));
    for p in scope.profiles {
        checks.extend(profile::checks(p, scope, &found).into_iter().map(|mut c| {
            c.profile = Some(p.name.clone());
            c
        }));
    }
    Ok(checks)
}

/// The reads and probes, as concurrent as their dependencies allow.
async fn gather(
    scope: &Scope<'_>,
    az: Result<String, String>,
    az_profile: AzProfile,
    signals: &Signals,
    progress: &dyn Fn(&str),
) -> Found {
    let net = Net::from_config(scope.azure)
        .and_then(|net| Arm::from_config(net.clone(), scope.azure).map(|arm| (net, arm)));
    // one token per subscription that az is signed in to; `az version` beside them
    let subscriptions = signed_in_subscriptions(scope, az.is_ok(), &az_profile);
    progress(&format!(
        "az: version{}",
        match subscriptions.len() {
            0 => String::new(),
            1 => " and the ARM token".into(),
            n => format!(" and {n} ARM tokens"),
        }
    ));
    let version = az.is_ok().then(|| {
        let (signals, az) = (signals.clone(), scope.azure.az.clone());
        tokio::task::spawn_blocking(move || local::az_version(&signals, az.as_deref()))
    });
    let fetches: Vec<_> = subscriptions
        .iter()
        .map(|sub| {
            let (sub, signals, az) = (sub.clone(), signals.clone(), scope.azure.az.clone());
            tokio::task::spawn_blocking(move || token::fetch_quietly(&sub, &signals, az.as_deref()))
        })
        .collect();
    let tls_arm = async {
        match &net {
            Ok((net, arm)) => probe(net, arm.endpoint()).await,
            Err(e) => Err(AzureError::Protocol {
                what: "bprof's HTTPS".into(),
                why: e.to_string(),
            }),
        }
    };
    let remote = async {
        let (tokens, facts) = collect_tokens(&subscriptions, fetches).await;
        let (reads, tls) = match &net {
            Ok((net, arm)) => read_rounds(scope, net, arm, &tokens, &facts, progress).await,
            Err(_) => Default::default(),
        };
        (facts, reads, tls)
    };
    let (tls_arm, (tokens, reads, tls)) = tokio::join!(tls_arm, remote);
    let version = match version {
        Some(task) => Some(task.await.unwrap_or_else(|e| Err(e.to_string()))),
        None => None,
    };
    Found {
        az,
        version,
        az_profile,
        tls_arm,
        no_net: net.as_ref().err().map(|e| bounded(&e.to_string(), 300)),
        tokens,
        reads,
        tls,
    }
}

/// The tokens az gave (by subscription, lower case) and what each says of its holder (or why
/// there is none).
async fn collect_tokens(
    subscriptions: &[String],
    fetches: Vec<tokio::task::JoinHandle<Result<AccessToken, AzureError>>>,
) -> (
    HashMap<String, AccessToken>,
    HashMap<String, Result<TokenFacts, String>>,
) {
    let mut tokens: HashMap<String, AccessToken> = HashMap::new();
    let mut facts: HashMap<String, Result<TokenFacts, String>> = HashMap::new();
    for (sub, fetch) in subscriptions.iter().zip(fetches) {
        let fetched = fetch.await.unwrap_or_else(|e| {
            Err(AzureError::Io {
                what: "the token call".into(),
                why: e.to_string(),
            })
        });
        match fetched {
            Ok(t) => {
                let claims = t.claims().unwrap_or_default();
                facts.insert(
                    sub.clone(),
                    Ok(TokenFacts {
                        oid: claims.oid,
                        upn: claims.upn.or(claims.unique_name),
                        len: t.secret.expose().len(),
                    }),
                );
                tokens.insert(sub.clone(), t);
            }
            Err(e) => {
                facts.insert(sub.clone(), Err(bounded(&e.to_string(), 300)));
            }
        }
    }
    (tokens, facts)
}

/// The subscriptions of the profiles checked that az is signed in to, each once (none
/// without az).
fn signed_in_subscriptions(scope: &Scope<'_>, az: bool, az_profile: &AzProfile) -> Vec<String> {
    let mut subscriptions: Vec<String> = Vec::new();
    if az {
        for p in scope.profiles {
            let sub = p.bastion.subscription.to_ascii_lowercase();
            if az_profile.knows(&sub) && !subscriptions.contains(&sub) {
                subscriptions.push(sub);
            }
        }
    }
    subscriptions
}

/// The two rounds of ARM reads (what the token alone lets bprof read, then what those answers
/// point at) and TLS to the bastions' hosts, concurrently within each round.
async fn read_rounds(
    scope: &Scope<'_>,
    net: &Net,
    arm: &Arm,
    tokens: &HashMap<String, AccessToken>,
    facts: &HashMap<String, Result<TokenFacts, String>>,
    progress: &dyn Fn(&str),
) -> (
    HashMap<Read, Result<Value, Failure>>,
    HashMap<String, Result<String, AzureError>>,
) {
    let mut reads = HashMap::new();
    let mut tls = HashMap::new();
    // round 1: what the token alone lets us read
    let first: Vec<Read> = distinct(scope.profiles.iter().flat_map(|p| {
        let oid = facts
            .get(&p.bastion.subscription.to_ascii_lowercase())
            .and_then(|f| f.as_ref().ok())
            .and_then(|f| f.oid.clone());
        profile::first_reads(p, oid.as_deref())
    }))
    .into_iter()
    .filter(|r| tokens.contains_key(&r.subscription))
    .collect();
    if !first.is_empty() {
        progress(&format!("ARM: {} reads", first.len()));
    }
    let answers = join_all(first.iter().map(|r| read(arm, tokens, r))).await;
    reads.extend(first.into_iter().zip(answers));
    // round 2: what those answers point at
    let second: Vec<Read> = distinct(
        scope
            .profiles
            .iter()
            .flat_map(|p| profile::second_reads(p, &reads)),
    )
    .into_iter()
    .filter(|r| tokens.contains_key(&r.subscription) && !reads.contains_key(r))
    .collect();
    let hosts: Vec<Endpoint> = distinct(scope.profiles.iter().filter_map(|p| {
        profile::bastion_host(p, &scope.plan_options(), &reads).and_then(Result::ok)
    }));
    if !second.is_empty() || !hosts.is_empty() {
        progress(&format!(
            "ARM: {} more reads, TLS to {} bastion host{}",
            second.len(),
            hosts.len(),
            if hosts.len() == 1 { "" } else { "s" }
        ));
    }
    let (answers, probes) = tokio::join!(
        join_all(second.iter().map(|r| read(arm, tokens, r))),
        join_all(hosts.iter().map(|h| probe(net, h)))
    );
    reads.extend(second.into_iter().zip(answers));
    tls.extend(hosts.iter().map(|h| h.authority()).zip(probes));
    (reads, tls)
}

/// The items in their first order, each once.
fn distinct<T: PartialEq>(items: impl IntoIterator<Item = T>) -> Vec<T> {
    let mut out = Vec::new();
    for i in items {
        if !out.contains(&i) {
            out.push(i);
        }
    }
    out
}

/// One ARM read within [`CALL_TIMEOUT`].
async fn read(
    arm: &Arm,
    tokens: &HashMap<String, AccessToken>,
    r: &Read,
) -> Result<Value, Failure> {
    let target = r.target.as_ref().map_err(|e| Failure::Other(e.clone()))?;
    let token = tokens
        .get(&r.subscription)
        .ok_or_else(|| Failure::Other("no token".into()))?;
    let call = async {
        if r.list {
            arm.get_all(&token.secret, target).await.map(Value::Array)
        } else {
            arm.get(&token.secret, target).await
        }
    };
    match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Ok(answer) => answer.map_err(Failure::of),
        Err(_) => Err(Failure::Timeout),
    }
}

/// TCP, the proxy's CONNECT when there is one, and the TLS handshake with `ep`; no request.
/// Says where and how it went: `host:port (direct)`, or through the proxy.
async fn probe(net: &Net, ep: &Endpoint) -> Result<String, AzureError> {
    let how = match net.proxy_for(&ep.host) {
        Some(p) => format!(
            "{} (through the proxy {}, HTTPS_PROXY)",
            ep.authority(),
            p.endpoint.authority()
        ),
        None => format!("{} (direct)", ep.authority()),
    };
    match tokio::time::timeout(CALL_TIMEOUT, net.connect(ep)).await {
        Ok(Ok(_stream)) => Ok(how),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(AzureError::Timeout {
            what: format!("connecting to {}", ep.authority()),
            secs: CALL_TIMEOUT.as_secs(),
        }),
    }
}

/// The last segment of an ARM id (a resource's name), bounded.
fn name_of(id: &str) -> String {
    bounded(
        id.trim_end_matches('/').rsplit('/').next().unwrap_or(id),
        80,
    )
}

//! Resource Graph: the reads a request needs (one token per tenant), the KQL, and every row of
//! it page by page, refusing a read that is cut short.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::request::resource_group_ok;
use super::{Batch, ImportError, Page, Read, Request};
use crate::azure::AzureError;
use crate::azure::arm::Arm;
use crate::azure::http::Net;
use crate::azure::signin::AzProfile;
use crate::azure::token::{self, Secret, TokenFor};
use crate::process::{ProcessError, Signals};

/// The api-version of Resource Graph queries.
pub const GRAPH_API: &str = "2022-10-01";
/// Resource Graph's query endpoint on ARM.
pub const GRAPH_PATH: &str = "/providers/Microsoft.ResourceGraph/resources";
/// Rows asked for per page (Resource Graph's largest page).
pub const PAGE_SIZE: u64 = 1000;
/// Pages followed at most: more is refused rather than cut short (a short read would remove
/// VMs from the file).
pub const MAX_PAGES: usize = 500;
/// Rows read at most, over all pages.
pub const MAX_ROWS: usize = 250_000;
/// A `$skipToken` longer than this is refused.
const MAX_SKIP_TOKEN: usize = 64 * 1024;

/// The reads a request needs: one per tenant. `--tenant` is one token for that tenant; the
/// subscriptions of several tenants (as az's profile file knows them) are read with one token
/// each; nothing named is az's default subscription's tenant.
pub fn batches(req: &Request, az: &AzProfile) -> Vec<Batch> {
    let subs = (!req.subscriptions.is_empty()).then(|| req.subscriptions.clone());
    if let Some(t) = &req.tenant {
        return vec![Batch {
            token: TokenFor::Tenant(t.clone()),
            subscriptions: subs,
        }];
    }
    let Some(subs) = subs else {
        return vec![Batch {
            token: TokenFor::Default,
            subscriptions: None,
        }];
    };
    // grouped by tenant, in the order given; a subscription az does not know is read alone
    let mut groups: Vec<(Option<String>, Vec<String>)> = Vec::new();
    for s in subs {
        let tenant = az.tenant_of(&s).map(str::to_string);
        match groups
            .iter_mut()
            .find(|(t, _)| tenant.is_some() && *t == tenant)
        {
            Some((_, list)) => list.push(s),
            None => groups.push((tenant, vec![s])),
        }
    }
    groups
        .into_iter()
        .map(|(_, list)| Batch {
            token: TokenFor::Subscription(list[0].clone()),
            subscriptions: Some(list),
        })
        .collect()
}

/// The KQL: the four resource types, with their properties; with a resource group, only that
/// group's VMs (the group is checked by [`resource_group_ok`]: no quote can end the string).
pub fn query_text(resource_group: Option<&str>) -> String {
    let mut q = String::from(
        "Resources\n| where type in~ ('microsoft.compute/virtualmachines', 'microsoft.network/networkinterfaces', 'microsoft.network/virtualnetworks', 'microsoft.network/bastionhosts')\n",
    );
    if let Some(rg) = resource_group.filter(|rg| resource_group_ok(rg)) {
        q.push_str(&format!(
            "| where type !~ 'microsoft.compute/virtualmachines' or resourceGroup =~ '{rg}'\n"
        ));
    }
    q.push_str("| project id, name, type, tenantId, subscriptionId, resourceGroup, sku, properties\n| order by id asc");
    q
}

fn incomplete(why: impl Into<String>) -> ImportError {
    ImportError::Incomplete(why.into())
}

/// Every row of a query, page by page (`$skipToken`), refusing a read that is cut short: a
/// truncated result, fewer rows than `totalRecords`, a token seen twice, or more than
/// [`MAX_PAGES`] pages or [`MAX_ROWS`] rows.
pub async fn query_all(
    arm: &Arm,
    token: &Secret,
    subscriptions: Option<&[String]>,
    query: &str,
    progress: &mut dyn FnMut(Page),
) -> Result<Vec<Value>, ImportError> {
    let target = format!("{GRAPH_PATH}?api-version={GRAPH_API}");
    let mut rows: Vec<Value> = Vec::new();
    let mut skip: Option<String> = None;
    let mut seen: BTreeSet<String> = BTreeSet::new();
    for number in 1..=MAX_PAGES {
        let mut options = json!({"$top": PAGE_SIZE, "resultFormat": "objectArray"});
        if let Some(s) = &skip {
            options["$skipToken"] = json!(s);
        }
        let mut body = json!({"query": query, "options": options});
        if let Some(subs) = subscriptions {
            body["subscriptions"] = json!(subs);
        }
        let answer = arm.post(token, &target, &body).await?;
        let Some(data) = answer.get("data").and_then(Value::as_array) else {
            return Err(incomplete("an answer without a `data` list of rows"));
        };
        let truncated = match answer.get("resultTruncated") {
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
            _ => false,
        };
        if truncated {
            return Err(incomplete("Resource Graph says the result is truncated"));
        }
        rows.extend(data.iter().cloned());
        if rows.len() > MAX_ROWS {
            return Err(incomplete(format!(
                "more than {MAX_ROWS} resources in the scope"
            )));
        }
        let total = answer.get("totalRecords").and_then(Value::as_u64);
        progress(Page {
            number,
            rows: rows.len(),
            total,
        });
        match answer.get("$skipToken").and_then(Value::as_str) {
            Some(t) if !t.is_empty() => {
                if t.len() > MAX_SKIP_TOKEN || !seen.insert(t.to_string()) {
                    return Err(incomplete("its $skipToken repeats or is too long"));
                }
                skip = Some(t.to_string());
            }
            _ => {
                if let Some(total) = total
                    && (rows.len() as u64) < total
                {
                    return Err(incomplete(format!(
                        "{} rows of the {total} it announced",
                        rows.len()
                    )));
                }
                return Ok(rows);
            }
        }
    }
    Err(incomplete(format!("more than {MAX_PAGES} pages")))
}

/// Waits for `f`, or for a signal (Ctrl-C), whichever comes first.
async fn or_signal<T>(
    f: impl std::future::Future<Output = Result<T, ImportError>>,
    signals: &Signals,
) -> Result<T, ImportError> {
    let watch = crate::azure::until_signal(signals);
    tokio::select! {
        r = f => r,
        signal = watch => Err(AzureError::Process(ProcessError::Interrupted { signal }).into()),
    }
}

/// Reads the scope: for each batch one az process for the token, then the query's pages.
pub fn read(
    req: &Request,
    az: &AzProfile,
    azure: &crate::azure::Config,
    signals: &Signals,
    progress: &mut dyn FnMut(Page),
) -> Result<Read, ImportError> {
    let net = Net::from_config(azure)?;
    let arm = Arm::from_config(net, azure)?;
    let rt = crate::azure::runtime("starting the network runtime")?;
    let query = query_text(req.resource_group.as_deref());
    let mut out = Read::default();
    for batch in batches(req, az) {
        let t = token::fetch_for(&batch.token, signals, azure.az.as_deref())?;
        if let Some(tid) = t
            .claims()
            .and_then(|c| c.tid)
            .filter(|t| crate::text::is_guid(t))
        {
            out.token_tenants.push(tid.to_ascii_lowercase());
        }
        let rows = rt.block_on(or_signal(
            query_all(
                &arm,
                &t.secret,
                batch.subscriptions.as_deref(),
                &query,
                progress,
            ),
            signals,
        ))?;
        out.rows.extend(rows);
    }
    Ok(out)
}

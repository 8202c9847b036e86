//! The fake's routes: ARM's read of the bastion, `/api/tokens`, the websocket's upgrade,
//! `/api/rdpfile`, the DELETE; what a test's own routes and failures change.

use super::*;

pub(super) fn route(state: &mut State, request: &Request, host: &str) -> Outcome {
    let path = request.path_only();
    if let Some(r) = state
        .config
        .routes
        .iter()
        .find(|r| r.method == request.method && request.decoded_path.starts_with(&r.prefix))
    {
        return outcome_of((r.answer)(request));
    }
    match request.method.as_str() {
        "GET" if path.starts_with("/webtunnelv2/") || path.starts_with("/omni/webtunnel/") => {
            upgrade(state, request)
        }
        "GET" if path.starts_with("/subscriptions/") => Outcome::Reply(arm(state, request, host)),
        "POST" if path == "/api/tokens" => tokens(state, request),
        "GET" if path == "/api/rdpfile" => rdpfile(state, request, host),
        "DELETE" if path.starts_with("/api/tokens/") => Outcome::Reply(delete(state, request)),
        _ => Outcome::Reply(Reply::message(
            404,
            &format!("the fake bastion has no {} {path}", request.method),
        )),
    }
}

pub(super) fn outcome_of(answer: Answer) -> Outcome {
    match answer {
        Answer::Json(status, body) => Outcome::Reply(Reply::json(status, body)),
        Answer::Raw(status, content_type, body) => Outcome::Reply(Reply {
            status,
            content_type,
            headers: Vec::new(),
            body,
        }),
        Answer::Hang => Outcome::Hang,
        Answer::Bytes(b) => Outcome::Bytes(b),
        Answer::After(delay, then) => Outcome::After(delay, Box::new(outcome_of(*then))),
    }
}

/// Takes one of the failures that are left: None when there is no failure or none left.
pub(super) fn take<T: Clone>(failure: &Option<T>, left: &mut Option<u32>) -> Option<T> {
    let failure = failure.clone()?;
    match left {
        None => Some(failure),
        Some(0) => None,
        Some(n) => {
            *n -= 1;
            Some(failure)
        }
    }
}

pub(super) fn arm(state: &mut State, request: &Request, host: &str) -> Reply {
    let config = &mut state.config;
    if let Some((status, body, retry_after)) =
        take(&config.arm_failure, &mut config.arm_failures_left)
    {
        let mut reply = Reply::json(status, serde_json::Value::Null);
        reply.body = body;
        if let Some(secs) = retry_after {
            reply.headers.push(("Retry-After", secs.to_string()));
        }
        return reply;
    }
    let bearer = request
        .header("authorization")
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, token)| {
            scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty()
        });
    if bearer.is_none() {
        return Reply::arm_error(
            401,
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is missing.",
        );
    }
    let query = parse_form(request.query());
    match query.iter().find(|(n, _)| n == "api-version") {
        None => {
            return Reply::arm_error(
                400,
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
            );
        }
        Some((_, v)) if v != API_VERSION => {
            return Reply::arm_error(
                400,
                "InvalidApiVersionParameter",
                &format!("The fake bastion serves api-version '{API_VERSION}' only, not '{v}'."),
            );
        }
        Some(_) => {}
    }
    let segments: Vec<String> = request
        .path_only()
        .split('/')
        .skip(1)
        .map(|s| percent_decode(s, false))
        .collect();
    let [
        subscriptions,
        sub,
        groups,
        rg,
        providers,
        namespace,
        kind,
        name,
    ] = segments.as_slice()
    else {
        return Reply::arm_error(
            404,
            "InvalidResourceType",
            "The fake ARM knows bastion hosts only.",
        );
    };
    let fixed = [
        (subscriptions, "subscriptions"),
        (groups, "resourceGroups"),
        (providers, "providers"),
        (namespace, "Microsoft.Network"),
        (kind, "bastionHosts"),
    ];
    if fixed.iter().any(|(s, want)| !s.eq_ignore_ascii_case(want))
        || [sub, rg, name].iter().any(|s| s.is_empty())
    {
        return Reply::arm_error(
            404,
            "InvalidResourceType",
            "The fake ARM knows bastion hosts only.",
        );
    }
    let mut properties = serde_json::json!({
        "dnsName": host,
        "enableIpConnect": config.ip_connect,
        "provisioningState": "Succeeded",
    });
    if let (Some(tunneling), Some(map)) = (config.tunneling, properties.as_object_mut()) {
        map.insert("enableTunneling".to_string(), tunneling.into());
    }
    Reply::json(
        200,
        serde_json::json!({
            "id": format!("/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Network/bastionHosts/{name}"),
            "name": name,
            "type": "Microsoft.Network/bastionHosts",
            "location": "westeurope",
            "sku": { "name": config.sku },
            "properties": properties,
        }),
    )
}

pub(super) fn tokens(state: &mut State, request: &Request) -> Outcome {
    let content_type = request
        .header("content-type")
        .unwrap_or_default()
        .to_ascii_lowercase();
    // the real service answers both with a bare 500
    if request.header("authorization").is_some() || content_type.contains("json") {
        return Outcome::Reply(Reply::message(500, "An error has occurred."));
    }
    let config = &mut state.config;
    match take(&config.token_failure, &mut config.token_failures_left) {
        Some(Failure::Json { status, message }) => {
            return Outcome::Reply(Reply::message(status, &message));
        }
        Some(Failure::Html { status }) => return Outcome::Reply(Reply::html(status)),
        Some(Failure::Hang) => return Outcome::Hang,
        None => {}
    }
    let bad = |message: String| Outcome::Reply(Reply::message(400, &message));
    if !content_type.starts_with("application/x-www-form-urlencoded") {
        return bad(format!(
            "The request's content type must be application/x-www-form-urlencoded, not '{content_type}'."
        ));
    }
    for name in ["resourceId", "protocol", "workloadHostPort", "aztoken"] {
        if request.field(name).is_none_or(str::is_empty) {
            return bad(format!("The {name} field is required."));
        }
    }
    if request.field("protocol") != Some("tcptunnel") {
        return bad("The protocol must be tcptunnel.".to_string());
    }
    if request
        .field("workloadHostPort")
        .and_then(|p| p.parse::<u16>().ok())
        .is_none()
    {
        return bad("The workloadHostPort field must be a port number.".to_string());
    }
    // an overlapping session names an open one (and its node); each session gets its own
    // authToken (the service's sessions are deleted one by one: azure-cli-extensions#10137)
    let node_id = match request.field("token").filter(|t| !t.is_empty()) {
        Some(token) => match state.sessions.get(token) {
            Some(session)
                if session.open && request.header("x-node-id") == Some(&session.node_id) =>
            {
                session.node_id.clone()
            }
            Some(session) if session.open => {
                return bad("The X-Node-Id header does not match the session's node.".to_string());
            }
            _ => return bad("The token is not an open session's.".to_string()),
        },
        None => state.config.node_id.clone(),
    };
    let auth_token = random_hex(32);
    state.sessions.insert(
        auth_token.clone(),
        Session {
            node_id: node_id.clone(),
            open: true,
        },
    );
    let websocket_token = random_hex(40);
    state
        .websocket_tokens
        .insert(websocket_token.clone(), false);
    Outcome::Reply(Reply::json(
        200,
        serde_json::json!({
            "authToken": auth_token,
            "nodeId": node_id,
            "websocketToken": websocket_token,
        }),
    ))
}

pub(super) fn upgrade(state: &mut State, request: &Request) -> Outcome {
    let token = percent_decode(
        request
            .path_only()
            .strip_prefix("/webtunnelv2/")
            .or_else(|| request.path_only().strip_prefix("/omni/webtunnel/"))
            .unwrap_or_default(),
        false,
    );
    match state.websocket_tokens.get_mut(&token) {
        Some(used) if !*used => {
            *used = true;
            Outcome::Upgrade {
                backend: state.config.backend.clone(),
                ping_every: state.config.ping_every,
                drop_after_bytes: state.config.drop_after_bytes,
                rekey_every: state.config.rekey_every,
            }
        }
        Some(_) => Outcome::Reply(Reply::message(404, "The websocket token was used already.")),
        None => Outcome::Reply(Reply::message(404, "The websocket token is unknown.")),
    }
}

/// The RD gateway's .rdp file for a VM, as the bastion serves it to az's Windows `rdp`.
pub(super) fn rdpfile(state: &mut State, request: &Request, host: &str) -> Outcome {
    let bearer = request
        .header("authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| !t.trim().is_empty());
    if !bearer {
        return Outcome::Reply(Reply::message(401, "Unauthorized"));
    }
    let query = parse_form(request.query());
    let get = |name: &str| {
        query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let (Some(id), Some("rdp"), Some(port), Some(aad)) = (
        get("resourceId"),
        get("format"),
        get("rdpport").and_then(|p| p.parse::<u16>().ok()),
        get("enablerdsaad"),
    ) else {
        return Outcome::Reply(Reply::message(400, "Bad rdpfile request."));
    };
    let aad = match aad {
        "True" => 1,
        "False" => 0,
        _ => return Outcome::Reply(Reply::message(400, "enablerdsaad is True or False.")),
    };
    let Some(vm) = id
        .strip_prefix("/subscriptions/")
        .and_then(|r| r.rsplit('/').next())
        .filter(|v| !v.is_empty())
    else {
        return Outcome::Reply(Reply::message(404, "No such VM."));
    };
    let token = format!("gw-{}", random_hex(48));
    state.gateway_tokens.push(token.clone());
    let text = format!(
        "full address:s:{vm}:{port}\r\ngatewayhostname:s:{host}\r\ngatewayusagemethod:i:1\r\ngatewaycredentialssource:i:5\r\ngatewayprofileusagemethod:i:1\r\ngatewayaccesstoken:s:{token}\r\nenablerdsaadauth:i:{aad}\r\nscreen mode id:i:2\r\nuse multimon:i:0\r\npromptcredentialonce:i:1\r\n"
    );
    if !state.config.rdpfile_utf16 {
        return Outcome::Reply(Reply {
            status: 200,
            content_type: "application/x-rdp",
            headers: Vec::new(),
            body: text,
        });
    }
    let mut body = vec![0xFF, 0xFE];
    for unit in text.encode_utf16() {
        body.extend_from_slice(&unit.to_le_bytes());
    }
    let mut bytes = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/x-rdp\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    bytes.extend(body);
    Outcome::Bytes(bytes)
}

pub(super) fn delete(state: &mut State, request: &Request) -> Reply {
    let token = percent_decode(
        request
            .path_only()
            .strip_prefix("/api/tokens/")
            .unwrap_or_default(),
        false,
    );
    match state.sessions.get_mut(&token) {
        Some(session) if session.open && request.header("x-node-id") == Some(&session.node_id) => {
            session.open = false;
            Reply {
                status: 200,
                content_type: "application/json; charset=utf-8",
                headers: Vec::new(),
                body: String::new(),
            }
        }
        _ => Reply::message(404, "No open session with that token on that node."),
    }
}

/// %XX decoded (and `+` as a space if `plus`); a broken escape stays as it is.
pub(super) fn percent_decode(s: &str, plus: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = s
                    .get(i + 1..i + 3)
                    .filter(|h| h.bytes().all(|c| c.is_ascii_hexdigit()))
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                if let Some(b) = hex {
                    out.push(b);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            b'+' if plus => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(super) fn parse_form(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(name, true), percent_decode(value, true))
        })
        .collect()
}

/// `len` random lowercase hex digits.
pub(super) fn random_hex(len: usize) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut out = String::with_capacity(len + 16);
    while out.len() < len {
        // SipHash under a fresh random key
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        out.push_str(&format!("{:016x}", hasher.finish()));
    }
    out.truncate(len);
    out
}

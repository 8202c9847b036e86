//! The fake's own tests: a tokio client speaking raw HTTP/1.1 and a websocket over TLS.

use super::*;

/// A current-thread runtime for a test's client.
fn client_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime for the test's client")
}

/// A TLS connection to the fake that trusts nothing but its `ca_file()`.
async fn tls_connect(fake: &FakeBastion) -> tokio_rustls::client::TlsStream<TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(fake.ca_file()).expect("the fake's CA file") {
        roots
            .add(cert.expect("a certificate in the CA file"))
            .expect("the fake's certificate as a root");
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = TcpStream::connect(fake.addr)
        .await
        .expect("connect to the fake");
    let name = rustls_pki_types::ServerName::try_from("127.0.0.1").expect("a server name");
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .expect("a TLS handshake with the fake")
}

struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// One request, by hand, on a connection of its own.
async fn http(
    fake: &FakeBastion,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Response {
    let mut stream = tls_connect(fake).await;
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
        fake.host(),
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream
        .write_all(request.as_bytes())
        .await
        .expect("send the request");
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .await
        .expect("read the response");
    let mut slots = [httparse::EMPTY_HEADER; 32];
    let mut parsed = httparse::Response::new(&mut slots);
    let Ok(httparse::Status::Complete(head_len)) = parsed.parse(&raw) else {
        panic!("no complete response: {}", String::from_utf8_lossy(&raw));
    };
    let headers = lowercase_headers(parsed.headers);
    let response = Response {
        status: parsed.code.unwrap_or_default(),
        body: String::from_utf8_lossy(&raw[head_len..]).into_owned(),
        headers,
    };
    assert_eq!(
        response.header("content-length"),
        Some(response.body.len().to_string().as_str()),
        "Content-Length"
    );
    response
}

const FORM: &str = "application/x-www-form-urlencoded";

fn token_form(resource_id: &str) -> String {
    format!(
        "resourceId={resource_id}&protocol=tcptunnel&workloadHostPort=22&aztoken=eyJ0eXAi%2Babc"
    )
}

async fn new_session(fake: &FakeBastion) -> serde_json::Value {
    let response = http(
        fake,
        "POST",
        "/api/tokens",
        &[("Content-Type", FORM)],
        &token_form("%2Fsubscriptions%2Fs%2FresourceGroups%2Frg%2Fproviders%2FMicrosoft.Compute%2FvirtualMachines%2Fvm"),
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.body);
    response.json()
}

#[test]
fn fake_bastion_arm_read_names_the_fake_as_the_bastion() {
    let fake = FakeBastion::start();
    client_runtime().block_on(async {
        let path = format!(
            "/subscriptions/sub-1/resourceGroups/my%20rg/providers/Microsoft.Network/bastionHosts/bas-1?api-version={API_VERSION}"
        );
        let ok = http(&fake, "GET", &path, &[("Authorization", "Bearer tok")], "").await;
        assert_eq!(ok.status, 200, "{}", ok.body);
        let host = ok.json();
        assert_eq!(host["properties"]["dnsName"], fake.host().as_str());
        assert_eq!(host["properties"]["enableTunneling"], true);
        assert_eq!(host["properties"]["enableIpConnect"], false);
        assert_eq!(host["sku"]["name"], "Standard");
        assert_eq!(
            host["id"],
            "/subscriptions/sub-1/resourceGroups/my rg/providers/Microsoft.Network/bastionHosts/bas-1"
        );

        let anonymous = http(&fake, "GET", &path, &[], "").await;
        assert_eq!(anonymous.status, 401);
        assert_eq!(anonymous.json()["error"]["code"], "AuthenticationFailed");

        fake.set(|c| {
            c.tunneling = None;
            c.sku = "Basic".to_string();
            c.arm_failure = Some((429, r#"{"error":{"code":"TooManyRequests","message":"slow down"}}"#.to_string(), Some(1)));
            c.arm_failures_left = Some(1);
        });
        let throttled = http(&fake, "GET", &path, &[("Authorization", "Bearer tok")], "").await;
        assert_eq!(throttled.status, 429);
        assert_eq!(throttled.header("retry-after"), Some("1"));
        let basic = http(&fake, "GET", &path, &[("Authorization", "Bearer tok")], "").await;
        assert_eq!(basic.status, 200, "{}", basic.body);
        let basic = basic.json();
        assert_eq!(basic["sku"]["name"], "Basic");
        assert!(basic["properties"].get("enableTunneling").is_none());
    });
    let requests = fake.requests();
    assert_eq!(requests.len(), 4);
    assert!(requests[0].path.contains("my%20rg"));
    assert_eq!(
        requests[0].decoded_path,
        "/subscriptions/sub-1/resourceGroups/my rg/providers/Microsoft.Network/bastionHosts/bas-1"
    );
    let log = fake.raw_requests_log();
    assert!(
        log.contains("authorization: <redacted>") && !log.contains("Bearer"),
        "{log}"
    );
}

#[test]
fn fake_bastion_tunnels_a_websocket_to_the_echo_and_ends_the_session() {
    let fake = FakeBastion::start();
    client_runtime().block_on(async {
        let session = new_session(&fake).await;
        let auth_token = session["authToken"]
            .as_str()
            .expect("authToken")
            .to_string();
        let websocket_token = session["websocketToken"].as_str().expect("websocketToken");
        assert_eq!(session["nodeId"], "node-7f3a");
        assert_eq!((auth_token.len(), websocket_token.len()), (32, 40));
        assert_eq!(fake.open_sessions(), 1);
        let url = format!(
            "wss://{}/webtunnelv2/{websocket_token}?X-Node-Id=node-7f3a",
            fake.host()
        );

        let (mut ws, _) = tokio_tungstenite::client_async(url.as_str(), tls_connect(&fake).await)
            .await
            .expect("the websocket handshake");
        fake.wait_until("the websocket counted", Duration::from_secs(1), |f| {
            f.open_websockets() == 1
        });
        let sent: Vec<u8> = (0..100 * 1024).map(|i| (i % 251) as u8).collect();
        ws.send(Message::binary(sent.clone())).await.expect("send");
        let mut received = Vec::new();
        while received.len() < sent.len() {
            match ws.next().await {
                Some(Ok(Message::Binary(b))) => received.extend_from_slice(&b),
                other => panic!("instead of echoed bytes: {other:?}"),
            }
        }
        assert!(received == sent, "the echo differs");
        ws.close(None).await.expect("close");
        while let Some(Ok(_)) = ws.next().await {}

        // single use
        let again = tokio_tungstenite::client_async(url.as_str(), tls_connect(&fake).await).await;
        match again {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), 404)
            }
            other => panic!(
                "a used websocket token was accepted: {:?}",
                other.map(|_| ())
            ),
        }

        let delete_path = format!("/api/tokens/{auth_token}");
        let wrong_node = http(&fake, "DELETE", &delete_path, &[("X-Node-Id", "other")], "").await;
        assert_eq!(wrong_node.status, 404);
        let deleted = http(
            &fake,
            "DELETE",
            &delete_path,
            &[("X-Node-Id", "node-7f3a")],
            "",
        )
        .await;
        assert_eq!(deleted.status, 200, "{}", deleted.body);
        assert_eq!(fake.open_sessions(), 0);
        let twice = http(
            &fake,
            "DELETE",
            &delete_path,
            &[("X-Node-Id", "node-7f3a")],
            "",
        )
        .await;
        assert_eq!(twice.status, 404);
    });
    fake.wait_until("the websocket closed", Duration::from_secs(1), |f| {
        f.open_websockets() == 0
    });
    let requests = fake.requests();
    let methods: Vec<&str> = requests.iter().map(|r| r.method.as_str()).collect();
    assert_eq!(
        methods,
        ["POST", "GET", "GET", "DELETE", "DELETE", "DELETE"]
    );
    assert_eq!(requests[0].field("aztoken"), Some("eyJ0eXAi+abc"));
    assert_eq!(
        requests[0].field("resourceId"),
        Some("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm")
    );
    assert_eq!(requests[1].header("upgrade"), Some("websocket"));
    assert!(requests[1].path.ends_with("?X-Node-Id=node-7f3a"));
    let log = fake.raw_requests_log();
    assert!(
        log.contains("aztoken=<redacted>") && !log.contains("eyJ0eXAi"),
        "{log}"
    );
}

#[test]
fn fake_bastion_token_endpoint_refuses_as_the_service_does() {
    let fake = FakeBastion::start();
    client_runtime().block_on(async {
        let form = token_form("x");
        let json = http(&fake, "POST", "/api/tokens", &[("Content-Type", "application/json")], "{}").await;
        assert_eq!(json.status, 500);
        let authorized = http(
            &fake,
            "POST",
            "/api/tokens",
            &[("Content-Type", FORM), ("Authorization", "Bearer tok")],
            &form,
        )
        .await;
        assert_eq!(authorized.status, 500);
        let missing = http(
            &fake,
            "POST",
            "/api/tokens",
            &[("Content-Type", FORM)],
            "resourceId=x&protocol=tcptunnel&workloadHostPort=22",
        )
        .await;
        assert_eq!(missing.status, 400);
        assert!(missing.json()["message"].as_str().is_some_and(|m| m.contains("aztoken")));

        // a second token for an open session needs that session's node
        let session = new_session(&fake).await;
        let auth_token = session["authToken"].as_str().expect("authToken");
        let reuse = format!("{form}&token={auth_token}");
        let no_node = http(&fake, "POST", "/api/tokens", &[("Content-Type", FORM)], &reuse).await;
        assert_eq!(no_node.status, 400);
        let same_node = http(
            &fake,
            "POST",
            "/api/tokens",
            &[("Content-Type", FORM), ("X-Node-Id", "node-7f3a")],
            &reuse,
        )
        .await;
        assert_eq!(same_node.status, 200, "{}", same_node.body);
        assert_ne!(same_node.json()["authToken"], auth_token);
        assert_eq!(same_node.json()["nodeId"], "node-7f3a");
        assert_eq!(fake.open_sessions(), 2);

        fake.set(|c| {
            c.token_failure = Some(Failure::Json {
                status: 401,
                message: "Unauthorized: the token is not valid".to_string(),
            })
        });
        let unauthorized = http(&fake, "POST", "/api/tokens", &[("Content-Type", FORM)], &form).await;
        assert_eq!(unauthorized.status, 401);
        assert_eq!(unauthorized.json()["message"], "Unauthorized: the token is not valid");

        fake.set(|c| c.token_failure = Some(Failure::Hang));
        let mut stream = tls_connect(&fake).await;
        let request = format!(
            "POST /api/tokens HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: {FORM}\r\nContent-Length: {}\r\n\r\n{form}",
            form.len()
        );
        stream.write_all(request.as_bytes()).await.expect("send");
        let mut byte = [0u8; 1];
        let silent = tokio::time::timeout(Duration::from_millis(200), stream.read(&mut byte)).await;
        assert!(silent.is_err(), "a hanging token endpoint answered");
    });
}

#[test]
fn fake_bastion_502_html_then_recovers_and_echoes_plain_tcp() {
    let fake = FakeBastion::start();
    fake.set(|c| {
        c.token_failure = Some(Failure::Html { status: 502 });
        c.token_failures_left = Some(1);
    });
    client_runtime().block_on(async {
        let form = token_form("x");
        let gateway = http(
            &fake,
            "POST",
            "/api/tokens",
            &[("Content-Type", FORM)],
            &form,
        )
        .await;
        assert_eq!(gateway.status, 502);
        assert_eq!(gateway.header("content-type"), Some("text/html"));
        assert!(
            gateway
                .body
                .starts_with("<html><head><title>502 Bad Gateway</title></head><body>")
        );
        let recovered = http(
            &fake,
            "POST",
            "/api/tokens",
            &[("Content-Type", FORM)],
            &form,
        )
        .await;
        assert_eq!(recovered.status, 200, "{}", recovered.body);

        let mut tcp = TcpStream::connect(fake.echo_addr())
            .await
            .expect("connect to the echo");
        tcp.write_all(b"baseline").await.expect("send");
        let mut back = [0u8; 8];
        tcp.read_exact(&mut back).await.expect("echoed");
        assert_eq!(&back, b"baseline");
    });
}

#[test]
fn fake_bastion_pings_forwards_over_tcp_and_cuts_after_the_byte_budget() {
    let fake = FakeBastion::start();
    fake.set(|c| {
        c.backend = Backend::Tcp(fake.echo_addr());
        c.ping_every = Some(Duration::from_millis(20));
        c.drop_after_bytes = Some(1000);
    });
    client_runtime().block_on(async {
        let session = new_session(&fake).await;
        let url = format!(
            "wss://{}/webtunnelv2/{}?X-Node-Id=node-7f3a",
            fake.host(),
            session["websocketToken"].as_str().expect("websocketToken")
        );
        let (mut ws, _) = tokio_tungstenite::client_async(url.as_str(), tls_connect(&fake).await)
            .await
            .expect("the websocket handshake");
        ws.send(Message::binary(vec![7u8; 300]))
            .await
            .expect("send");
        // 600 of the 1000 bytes: 300 out, 300 back; reading answers the pings meanwhile
        let mut received = 0;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
        while received < 300 || fake.pongs() == 0 {
            match tokio::time::timeout_at(deadline, ws.next()).await {
                Ok(Some(Ok(Message::Binary(b)))) => received += b.len(),
                Ok(Some(Ok(Message::Ping(_)))) => {}
                other => panic!("instead of echo and pings: {other:?}"),
            }
        }
        assert_eq!(received, 300);
        // 400 more pass, then the connection is cut: no close frame
        ws.send(Message::binary(vec![7u8; 500]))
            .await
            .expect("send");
        loop {
            match tokio::time::timeout(Duration::from_secs(1), ws.next()).await {
                Ok(Some(Ok(Message::Ping(_)))) => {}
                Ok(Some(Ok(Message::Close(frame)))) => panic!("a close frame: {frame:?}"),
                Ok(Some(Ok(Message::Binary(b)))) => panic!("bytes past the budget: {}", b.len()),
                Ok(Some(Err(_)) | None) => break,
                other => panic!("instead of a cut: {other:?}"),
            }
        }
    });
    fake.wait_until("the cut websocket gone", Duration::from_secs(1), |f| {
        f.open_websockets() == 0
    });
    assert!(fake.pongs() >= 1);
}

#[test]
fn fake_bastion_closes_the_websocket_with_1000_when_the_backend_ends() {
    let fake = FakeBastion::start();
    let backend = std::net::TcpListener::bind("127.0.0.1:0").expect("a backend listener");
    let backend_addr = backend.local_addr().expect("the backend's address");
    let server = std::thread::spawn(move || {
        let (mut conn, _) = backend.accept().expect("the fake's backend connection");
        std::io::Write::write_all(&mut conn, b"SSH-2.0-fake\r\n").expect("the banner");
    });
    fake.set(|c| c.backend = Backend::Tcp(backend_addr));
    client_runtime().block_on(async {
        let session = new_session(&fake).await;
        let url = format!(
            "wss://{}/webtunnelv2/{}?X-Node-Id=node-7f3a",
            fake.host(),
            session["websocketToken"].as_str().expect("websocketToken")
        );
        let (mut ws, _) = tokio_tungstenite::client_async(url.as_str(), tls_connect(&fake).await)
            .await
            .expect("the websocket handshake");
        let mut received = Vec::new();
        let code = loop {
            match tokio::time::timeout(Duration::from_secs(1), ws.next()).await {
                Ok(Some(Ok(Message::Binary(b)))) => received.extend_from_slice(&b),
                Ok(Some(Ok(Message::Close(frame)))) => break frame.map(|f| f.code),
                other => panic!("instead of the banner and a close: {other:?}"),
            }
        };
        assert_eq!(received, b"SSH-2.0-fake\r\n");
        assert_eq!(code, Some(CloseCode::Normal));
        // the client's reply to the close; the server ends the connection
        while let Ok(Some(Ok(_))) = tokio::time::timeout(Duration::from_secs(1), ws.next()).await {}
    });
    server.join().expect("the backend thread");
    fake.wait_until("the websocket closed", Duration::from_secs(1), |f| {
        f.open_websockets() == 0
    });
}

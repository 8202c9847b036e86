//! The pipelines the fuzz targets drive, shared with the regression tests of the normal suite
//! (`tests/cli/fuzz_regressions.rs` includes this file), so a saved input replays exactly what
//! the fuzzer ran. Each one panics only where bprof broke a promise: a panic inside bprof, a
//! file refused without a problem, a control character that reached an argv.

use std::path::Path;

use bprof::plan::{self, Os, PlanError, PlanOptions, template};
use bprof::profile::diag::Problem;
use bprof::profile::load::{self, FileKind, Section};
use bprof::profile::resolve::{self, ResolveError};
use serde_json::{Value, json};

/// Splits one input into the files of a set.
pub const FILE_SEPARATOR: u8 = 0xFF;

/// The files an input becomes, in order: two shared files (names are global across them), a
/// personal override, and the person's own user config (whose templates are trusted).
pub const FILES: [(&str, FileKind); 4] = [
    ("a.yaml", FileKind::Shared),
    ("b.yaml", FileKind::Shared),
    ("c.local.yaml", FileKind::Override),
    ("local.yaml", FileKind::User),
];

/// What became of one input of [`load_validate_plan`].
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The files were refused: this many problems (at least one).
    Refused(usize),
    /// The set loaded: the problems `validate` reports, and how many plans were built.
    Loaded { problems: usize, plans: usize },
}

fn render_all(problems: &[Problem]) {
    for p in problems {
        assert!(
            p.line >= 1 && p.column >= 1,
            "a problem without a position: {p:?}"
        );
        let shown = p.render(false);
        let _ = bprof::terminal::text(&shown, true);
        let _ = serde_json::to_string(&p.to_json());
    }
}

/// Bytes -> up to four files in `dir` (split at [`FILE_SEPARATOR`]) -> read, parse, schema
/// -> the set -> `validate` -> every profile resolved and planned for each OS, as text and
/// JSON. The same layers `bprof validate` and `bprof plan` go through.
pub fn load_validate_plan(dir: &Path, data: &[u8]) -> Outcome {
    let mut problems = Vec::new();
    let mut files = Vec::new();
    for (part, (name, kind)) in data.split(|b| *b == FILE_SEPARATOR).zip(FILES) {
        let path = dir.join(name);
        std::fs::write(&path, part).expect("writing the input file");
        let before = problems.len();
        match load::read_file(&path, name.to_string(), kind, &mut problems) {
            Ok(Some(f)) => files.push(f),
            Ok(None) => assert!(problems.len() > before, "{name} refused without a problem"),
            Err(e) => panic!("{name}: not a data error: {e}"),
        }
    }
    for (name, _) in FILES
        .iter()
        .skip(data.split(|b| *b == FILE_SEPARATOR).count())
    {
        let _ = std::fs::remove_file(dir.join(name));
    }
    let set = load::assemble(files, &mut problems);
    render_all(&problems);
    if !problems.is_empty() {
        return Outcome::Refused(problems.len());
    }
    let reported = plan::validate_all(&set);
    render_all(&reported);
    let mut plans = 0;
    let names: Vec<String> = set.names(Section::Profiles).map(str::to_string).collect();
    for name in names {
        let profile = match resolve::resolve(&set, &name) {
            Ok(p) => p,
            Err(ResolveError::Invalid { problems, .. }) => {
                assert!(!problems.is_empty(), "`{name}` invalid without a problem");
                render_all(&problems);
                continue;
            }
            Err(e) => panic!("`{name}` of the set's own names: {e}"),
        };
        for os in [Os::Linux, Os::Macos, Os::Windows] {
            match plan::build(&set, &profile, &PlanOptions::for_os(os)) {
                Ok(p) => {
                    for step in &p.steps {
                        for arg in &step.argv {
                            assert!(
                                bprof::profile::allow::control_char(arg).is_none(),
                                "a control character reached an argv: {arg:?}"
                            );
                        }
                    }
                    let _ = bprof::terminal::text(&p.to_text(), false);
                    let _ = serde_json::to_string(&p.to_json());
                    plans += 1;
                }
                Err(PlanError::Invalid { problems, .. }) => render_all(&problems),
                Err(PlanError::Template(e)) => {
                    let _ = (e.to_string(), e.hint());
                }
                Err(PlanError::Consent { requests, .. }) => {
                    assert!(!requests.is_empty(), "consent refused for nothing");
                }
                Err(e @ (PlanError::Native { .. } | PlanError::Developer { .. })) => {
                    let _ = (e.to_string(), e.hint());
                }
            }
        }
    }
    Outcome::Loaded {
        problems: reported.len(),
        plans,
    }
}

/// Splits a template input into steps.
pub const STEP_SEPARATOR: char = '\u{1e}';
/// Splits a step into tokens.
pub const TOKEN_SEPARATOR: char = '\u{1f}';

/// Template contexts: every bundled profile of `profiles_dir` for each OS (what `plan` gives a
/// template), and one with nested values of every JSON type.
pub fn contexts(profiles_dir: &Path) -> Vec<(Value, String)> {
    let mut problems = Vec::new();
    let mut files = Vec::new();
    let mut paths: Vec<_> = std::fs::read_dir(profiles_dir)
        .expect("the bundled profiles")
        .map(|e| e.expect("a directory entry").path())
        .collect();
    paths.sort();
    for path in paths {
        let display = path.display().to_string();
        if let Some(f) = load::read_file(&path, display, FileKind::Shared, &mut problems)
            .expect("the bundled profiles are readable")
        {
            files.push(f);
        }
    }
    let set = load::assemble(files, &mut problems);
    assert!(problems.is_empty(), "the bundled profiles are valid");
    let mut out = Vec::new();
    for name in set.names(Section::Profiles) {
        let Ok(profile) = resolve::resolve(&set, name) else {
            continue;
        };
        for os in [Os::Linux, Os::Macos, Os::Windows] {
            let opts = PlanOptions::for_os(os);
            let port = plan::local_port(&profile, None);
            out.push((
                plan::context(&profile, &opts, port),
                profile.tenant.id.clone(),
            ));
        }
    }
    out.push((
        json!({
            "profile": {"a": [1, [2, [3, {"b": null}]], "x y", true, -1.5e300], "extra_args": ["--x", ""], "s": "-v"},
            "tenant": {}, "bastion": null, "vm": [], "port": 0
        }),
        String::new(),
    ));
    out
}

/// Bytes -> a context (the first byte chooses) and a template (the rest, as text, split into
/// steps at [`STEP_SEPARATOR`] and tokens at [`TOKEN_SEPARATOR`]) -> `check_token` of every
/// token -> `render` -> the final argv checked for every OS and quoted for display. Returns
/// whether it rendered.
pub fn template_render(contexts: &[(Value, String)], data: &[u8]) -> bool {
    let Some((&first, rest)) = data.split_first() else {
        return false;
    };
    let (ctx, tenant) = &contexts[usize::from(first) % contexts.len()];
    let text = String::from_utf8_lossy(rest);
    let steps: Vec<Vec<String>> = text
        .split(STEP_SEPARATOR)
        .map(|s| s.split(TOKEN_SEPARATOR).map(str::to_string).collect())
        .collect();
    let shape = template::check_shape(&steps);
    let tokens_ok = steps
        .iter()
        .flatten()
        .all(|t| template::check_token(t).is_ok());
    match template::render("fuzz", &steps, ctx) {
        Ok(rendered) => {
            assert!(shape.is_ok(), "rendered a template of the wrong shape");
            assert!(tokens_ok, "rendered a token that check_token refuses");
            for step in &rendered {
                for os in [Os::Linux, Os::Macos, Os::Windows] {
                    let _ = plan::check::step(step, os, &[], tenant);
                }
                let argv: Vec<String> = step.iter().map(|a| a.value.clone()).collect();
                let _ = plan::shell::join(&argv, false);
                let _ = plan::shell::join(&argv, true);
            }
            true
        }
        Err(e) => {
            let _ = (e.to_string(), e.hint());
            false
        }
    }
}

/// One answer from the network: the first byte picks a HEAD request (bit 0) and the body limit
/// (the rest: 0 to 127 KiB), the second how the answer is cut into reads (1 to 256 bytes), the
/// rest is the answer. Read piece by piece, it ends in a response within the limit or an error,
/// never a panic; read at once, it gives the same response whenever both read one.
pub fn http_response(data: &[u8]) -> bool {
    use bprof::azure::http::response::{Parser, parse_all};
    let [first, second, answer @ ..] = data else {
        return false;
    };
    let head_only = first & 1 == 1;
    let limit = usize::from(first >> 1) * 1024;
    let cut = usize::from(*second) + 1;
    let mut parser = Parser::new(head_only, limit);
    let mut read = None;
    for piece in answer.chunks(cut) {
        match parser.feed(piece) {
            Ok(None) => {}
            done => {
                read = Some(done.map(|r| r.expect("a response")));
                break;
            }
        }
    }
    let read = read.unwrap_or_else(|| parser.end());
    if let Ok(r) = &read {
        assert!(r.body.len() <= limit, "a body past the limit");
        assert!(
            (200..=599).contains(&r.status),
            "an interim status as the answer"
        );
        if let Ok(whole) = parse_all(answer, head_only, limit) {
            assert_eq!(&whole, r, "read in pieces, a different response");
        }
    }
    read.is_ok()
}

/// The bastion's gateway file, as the network may send it: decoded (UTF-16 with its mark or
/// UTF-8) and merged with a profile's settings for the bastion `bst-....bastion.azure.com`,
/// it is refused or becomes lines with no control character, one address and a gateway under
/// the bastion's domain; never a panic.
pub fn gateway_file(data: &[u8]) -> bool {
    const HOST: &str = "bst-0b6c3c6e-0000-4000-8000-000000000001.bastion.azure.com";
    let Ok(text) = bprof::azure::gateway::decode(data) else {
        return false;
    };
    let settings = [
        "screen mode id:i:1".to_string(),
        "desktopwidth:i:1280".into(),
    ];
    let Ok(m) = bprof::plan::gateway::merge(&text, &settings, HOST) else {
        return false;
    };
    let key = |l: &str| {
        let mut parts = l.splitn(3, ':');
        let name = parts.next().unwrap_or("");
        let ty = parts.next().unwrap_or("");
        bprof::profile::allow::rdp_key(&format!("{name}:{ty}"))
    };
    for l in &m.lines {
        assert!(
            !l.chars().any(char::is_control),
            "a control character: {l:?}"
        );
        if key(l) == "gatewayhostname:s" {
            let v = l.splitn(3, ':').nth(2).unwrap_or("").to_ascii_lowercase();
            let host = v.split(':').next().unwrap_or("");
            assert!(
                host == HOST || host.ends_with(".bastion.azure.com"),
                "a gateway elsewhere: {l:?}"
            );
        }
    }
    let addresses = m
        .lines
        .iter()
        .filter(|l| key(l) == "full address:s")
        .count();
    assert_eq!(addresses, 1, "{:?}", m.lines);
    true
}

/// The tunnel's TLS records as the network may send them: the first byte picks the version
/// (bit 0: TLS 1.2) and the cipher (the rest: AES-128-GCM, AES-256-GCM, ChaCha20-Poly1305), the
/// second how the wire is cut into reads (1 to 256 bytes), the third and fourth a byte to change
/// on the wire (where, and how: 0 changes nothing); the rest is records to seal, each a content
/// type, a 2-byte length (up to 17,000, so some are over what a record may carry) and its
/// plaintext. The wire is opened as bprof's receiving half opens it (complete records from the
/// front of what was read, the rest kept), handshake records read as messages: every record
/// sealed unchanged opens to its own type and plaintext, a changed wire is refused or opens
/// to what was sealed, and nothing panics. True when every record opened.
#[cfg(not(target_os = "macos"))]
pub fn tls_records(data: &[u8]) -> bool {
    use bprof::azure::tls::records::{
        self, HANDSHAKE, MAX_HANDSHAKE, Version, fixed_pair, next_message,
    };
    let [pick, cut, at, change, rest @ ..] = data else {
        return false;
    };
    let version = if pick & 1 == 1 {
        Version::Tls12
    } else {
        Version::Tls13
    };
    let Ok((mut sealer, mut opener)) = fixed_pair(version, (pick >> 1) % 3) else {
        return false;
    };
    let mut wire = Vec::new();
    let mut sealed = Vec::new();
    let mut rest = rest;
    while let [typ, l0, l1, more @ ..] = rest {
        let len = usize::from(u16::from_le_bytes([*l0, *l1])) % 17_001;
        let plain = &more[..len.min(more.len())];
        rest = &more[plain.len()..];
        let fits = sealer
            .seal(*typ, &mut wire, |o| {
                o.extend_from_slice(plain);
                Ok(())
            })
            .is_ok();
        assert_eq!(
            fits,
            plain.len() <= records::MAX_PLAIN,
            "sealed past the limit"
        );
        if fits {
            sealed.push((*typ, plain.to_vec()));
        }
    }
    let changed = *change != 0 && !wire.is_empty();
    if changed {
        let i = usize::from(*at) * wire.len() / 256;
        wire[i] ^= change;
    }
    // the receiving half: reads of `cut` bytes into its buffer, complete records opened
    let mut buf: Vec<u8> = Vec::new();
    let mut start = 0;
    let mut opened = 0;
    let mut hs = Vec::new();
    for read in wire.chunks(usize::from(*cut) + 1) {
        buf.extend_from_slice(read);
        loop {
            match opener.open(&mut buf[start..]) {
                Ok(Some(r)) => {
                    assert!(
                        r.plain.start <= r.plain.end && r.plain.end <= r.len,
                        "{r:?}"
                    );
                    let plain = &buf[start..][r.plain.clone()];
                    if let Some((typ, want)) = sealed.get(opened) {
                        // TLS 1.3 hides the type behind the plaintext's last byte that is not
                        // zero: a type 0 with a plaintext ending in zeros reads differently
                        if !changed && (*typ != 0 || version == Version::Tls12) {
                            assert_eq!((r.typ, plain), (*typ, &want[..]), "record {opened}");
                        }
                    }
                    if r.typ == HANDSHAKE && hs.len() + plain.len() <= MAX_HANDSHAKE {
                        hs.extend_from_slice(plain);
                        while let Ok(Some(_)) = next_message(&mut hs, version) {}
                    }
                    start += r.len;
                    opened += 1;
                }
                Ok(None) => break,
                Err(_) => return false,
            }
        }
    }
    opened == sealed.len()
}

//! az's stderr (and a tunnel's stdout): read from a pipe by a thread that forwards it to bprof's
//! stderr as it comes (az's messages stay visible; control sequences other than color are
//! escaped, as in all of bprof's output). The relay always drains: when bprof's own stderr is
//! closed it reads on, so az never blocks on a full pipe. It keeps the last lines, from which
//! bprof recognises az's known failures ([`crate::azure::known`]) after az exits, and notes a
//! tunnel's lines that say it is ready or that its bind failed (`Defined port is currently
//! unavailable`: someone else has the port). Where bprof cannot see who owns a socket (macOS,
//! Windows), the ready line is part of readiness; everywhere a failed bind is fatal.

use std::io::{Read, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// az's line once it listens (`Tunnel is ready, connect on port P`).
pub const READY: &str = "Tunnel is ready";
/// az's line when it cannot bind the port.
pub const PORT_UNAVAILABLE: &str = "Defined port is currently unavailable";

/// What the output said so far.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    pub ready: bool,
    pub port_unavailable: bool,
    /// The pipe is closed: az and everything that inherited it are gone, all is forwarded.
    pub closed: bool,
}

impl Seen {
    /// Notes one line of az's output.
    pub fn note(&mut self, line: &str) {
        if line.contains(READY) {
            self.ready = true;
        }
        if line.contains(PORT_UNAVAILABLE) {
            self.port_unavailable = true;
        }
    }
}

/// The last bytes of output kept for recognising a failure.
const TAIL: usize = 16 * 1024;

/// What the relay knows: the notes and the output's tail.
#[derive(Default)]
struct Watched {
    seen: Seen,
    tail: Vec<u8>,
}

/// The watched output of one az process.
pub struct AzOutput {
    state: Arc<(Mutex<Watched>, Condvar)>,
}

fn lock(m: &Mutex<Watched>) -> MutexGuard<'_, Watched> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl AzOutput {
    /// Starts the thread that forwards `pipe` to stderr and notes az's lines; it ends when
    /// the pipe closes.
    pub fn watch(pipe: impl Read + Send + 'static) -> AzOutput {
        AzOutput::watch_to(pipe, std::io::stderr())
    }

    /// [`AzOutput::watch`], forwarding to `sink`.
    fn watch_to(
        pipe: impl Read + Send + 'static,
        mut sink: impl Write + Send + 'static,
    ) -> AzOutput {
        let state = Arc::new((Mutex::new(Watched::default()), Condvar::new()));
        let shared = Arc::clone(&state);
        let forward = move || {
            let mut pipe = pipe;
            let mut chunk = [0u8; 4096];
            // the current line, for the notes; bytes go to stderr as they come (a prompt
            // without a newline shows too)
            let mut line: Vec<u8> = Vec::new();
            loop {
                let n = match pipe.read(&mut chunk) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(_) => break,
                };
                // the one output rule: az's colors pass, other control sequences are escaped
                let shown = crate::terminal::text(&String::from_utf8_lossy(&chunk[..n]), true);
                let _ = sink.write_all(shown.as_bytes());
                let _ = sink.flush();
                let mut w = lock(&shared.0);
                for &b in &chunk[..n] {
                    line.push(b);
                    if b == b'\n' {
                        w.seen.note(&String::from_utf8_lossy(&line));
                        line.clear();
                    }
                }
                w.tail.extend_from_slice(&chunk[..n]);
                if w.tail.len() > TAIL {
                    let cut = w.tail.len() - TAIL;
                    w.tail.drain(..cut);
                }
                drop(w);
                shared.1.notify_all();
            }
            let mut w = lock(&shared.0);
            w.seen.note(&String::from_utf8_lossy(&line));
            w.seen.closed = true;
            drop(w);
            shared.1.notify_all();
        };
        if let Err(e) = std::thread::Builder::new()
            .name("az-output".into())
            .spawn(forward)
        {
            // no thread: nothing reads the pipe, and az would block on a full one; say so and
            // treat the output as ended
            crate::terminal::eprintln(&format!("bprof: cannot read az's output: {e}"));
            lock(&state.0).seen.closed = true;
        }
        AzOutput { state }
    }

    pub fn seen(&self) -> Seen {
        lock(&self.state.0).seen
    }

    /// The last lines of the output (at most 16 KiB), as text.
    pub fn tail(&self) -> String {
        String::from_utf8_lossy(&lock(&self.state.0).tail).into_owned()
    }

    /// Waits at most `d`, returning early when a line arrives or the pipe closes.
    pub fn wait(&self, d: Duration) {
        let (m, cv) = &*self.state;
        let guard = lock(m);
        if guard.seen.closed {
            drop(guard);
            std::thread::sleep(d);
            return;
        }
        let _ = cv.wait_timeout(guard, d);
    }

    /// Waits until the pipe is closed (everything az wrote has been forwarded), at most `d`.
    pub fn drain(&self, d: Duration) {
        let (m, cv) = &*self.state;
        let deadline = Instant::now() + d;
        let mut guard = lock(m);
        while !guard.seen.closed {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            guard = match cv.wait_timeout(guard, left) {
                Ok((g, _)) => g,
                Err(e) => e.into_inner().0,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn az_lines() {
        let mut s = Seen::default();
        s.note("WARNING: Opening tunnel on port: 5000\n");
        assert_eq!(s, Seen::default());
        s.note("WARNING: Tunnel is ready, connect on port 5000\r\n");
        assert!(s.ready && !s.port_unavailable);
        let mut s = Seen::default();
        s.note("ERROR: Defined port is currently unavailable\n");
        assert!(s.port_unavailable && !s.ready);
    }

    #[test]
    fn the_pipe_is_read_to_its_end() {
        let out = AzOutput::watch_to(
            &b"a\nWARNING: Tunnel is ready, connect on port 1\nlast"[..],
            std::io::sink(),
        );
        out.drain(Duration::from_secs(5));
        let seen = out.seen();
        assert!(seen.closed && seen.ready && !seen.port_unavailable);
        assert!(out.tail().ends_with("port 1\nlast"));
    }

    /// Gives one byte per read: a line arrives in pieces.
    struct Trickle(&'static [u8]);

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            match (self.0.split_first(), buf.first_mut()) {
                (Some((b, rest)), Some(slot)) => {
                    *slot = *b;
                    self.0 = rest;
                    Ok(1)
                }
                _ => Ok(0),
            }
        }
    }

    #[test]
    fn a_line_in_pieces_and_a_last_line_without_newline() {
        let out = AzOutput::watch_to(Trickle(
            b"WARNING: Tunnel is ready, connect on port 1\nERROR: Defined port is currently unavailable",
        ), std::io::sink());
        out.drain(Duration::from_secs(5));
        let seen = out.seen();
        assert!(seen.closed && seen.ready && seen.port_unavailable);
    }
}

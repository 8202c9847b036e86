//! az's tunnel, supervised: started in the background, ready only when it (and nothing else)
//! listens on its port, restarted a few times when it dies, stopped when the session ends.

use super::*;

/// Who listens on the tunnel's port. Linux: the LISTEN sockets on the port and the tunnel's
/// process group (`listener`). Elsewhere bprof cannot see socket owners: az's ready line and a
/// connection to 127.0.0.1 are taken as the tunnel's.
pub(super) fn owner(port: u16, child: &Child, seen: Seen) -> Result<Owner, RunError> {
    #[cfg(target_os = "linux")]
    {
        let _ = seen;
        listener::check(port, child.group_id())
            .map_err(|source| RunError::ListenerCheck { port, source })
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = child;
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        if seen.ready && std::net::TcpStream::connect_timeout(&addr, POLL * 4).is_ok() {
            Ok(Owner::Tunnel)
        } else {
            Ok(Owner::Nobody)
        }
    }
}

/// Waits until the tunnel, and only the tunnel, listens on `port`. Fails when another process
/// listens on it (or az says its bind failed), when the tunnel exits first, when the timeout
/// passes, or when a signal arrives.
pub(super) fn wait_ready(
    plan: &Plan,
    child: &Child,
    output: &AzOutput,
    port: u16,
    signals: &Signals,
) -> Result<(), RunError> {
    let timeout = plan.host.tunnel_timeout;
    let start = Instant::now();
    let squatted = || RunError::PortSquatted {
        port,
        at: format!("{} (or [::1]:{port})", local_address(port)),
    };
    loop {
        if let Some(sig) = signals.received() {
            return Err(ProcessError::Interrupted { signal: sig }.into());
        }
        if output.seen().port_unavailable {
            return Err(squatted());
        }
        if let Some(exit) = child.try_exit() {
            // az's last words first: they may say why
            output.drain(DRAIN);
            if output.seen().port_unavailable {
                return Err(squatted());
            }
            return Err(RunError::TunnelExited {
                program: child.name().to_string(),
                exit,
                known: known_hint(plan, &output.tail()),
            });
        }
        match owner(port, child, output.seen())? {
            Owner::Tunnel => return Ok(()),
            Owner::Foreign(addr) => {
                return Err(RunError::PortSquatted {
                    port,
                    at: addr.to_string(),
                });
            }
            Owner::Nobody => {}
        }
        if start.elapsed() >= timeout {
            return Err(RunError::TunnelTimeout {
                port,
                secs: timeout.as_secs_f64(),
            });
        }
        output.wait(POLL);
    }
}

/// The tunnel of a session: restarted on the same port when it dies, a bounded number of times.
/// It owns the running az: dropping the tunnel stops it.
pub(super) struct Tunnel<'a> {
    pub(super) plan: &'a Plan,
    pub(super) argv: &'a [String],
    pub(super) port: u16,
    /// The running az and its watched output.
    pub(super) child: Option<(Child, AzOutput)>,
    pub(super) restarts: u32,
}

impl Tunnel<'_> {
    pub(super) fn start(&mut self) -> Result<(), RunError> {
        let mut child = spawn(Spawn {
            argv: self.argv,
            background: true,
            pipe_stderr: true,
            capture_stdout: false,
            az: self.plan.host.azure.az.as_deref(),
        })?;
        let output = match child.take_stderr() {
            Some(pipe) => AzOutput::watch(pipe),
            None => AzOutput::watch(std::io::empty()),
        };
        self.child = Some((child, output));
        Ok(())
    }

    pub(super) fn wait_ready(&self, signals: &Signals) -> Result<(), RunError> {
        match &self.child {
            Some((c, output)) => wait_ready(self.plan, c, output, self.port, signals),
            None => Ok(()),
        }
    }

    /// Checks the tunnel; restarts it if it died. Ok(false): it ended normally (exit 0, such as
    /// az's `--timeout`), and the session ends.
    pub(super) fn keep_alive(&mut self, signals: &Signals) -> Result<bool, RunError> {
        let Some((child, output)) = &self.child else {
            return Ok(false);
        };
        let Some(exit) = child.try_exit() else {
            return Ok(true);
        };
        child.stop(SIGTERM, Duration::from_millis(100));
        output.drain(DRAIN);
        let program = child.name().to_string();
        if exit.success() {
            crate::terminal::eprintln(&format!("bprof: the tunnel closed (`{program}` {exit})"));
            return Ok(false);
        }
        if let Some(h) = known_hint(self.plan, &output.tail()) {
            crate::terminal::eprintln(&format!("bprof: hint: {h}"));
        }
        if self.restarts >= MAX_TUNNEL_RESTARTS {
            return Err(RunError::TunnelDied {
                restarts: self.restarts,
                program,
                exit,
            });
        }
        self.restarts += 1;
        crate::terminal::eprintln(&format!(
            "bprof: the tunnel on {} died (`{program}` {exit}); restarting it ({}/{MAX_TUNNEL_RESTARTS})",
            local_address(self.port),
            self.restarts
        ));
        self.start()?;
        self.wait_ready(signals)?;
        crate::terminal::eprintln(&format!(
            "bprof: the tunnel is back on {}",
            local_address(self.port)
        ));
        Ok(true)
    }

    fn stop(&mut self) {
        if let Some((c, output)) = self.child.take() {
            c.stop(SIGTERM, Duration::from_secs(3));
            output.drain(DRAIN);
        }
    }
}

impl Drop for Tunnel<'_> {
    fn drop(&mut self) {
        self.stop();
    }
}

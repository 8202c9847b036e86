//! A plan as people read it: lines to paste into the target OS's shell, conditions and notes
//! as comments; and as JSON.

use super::*;

impl Plan {
    /// The plan as lines a person can paste into the target OS's shell (PowerShell on Windows,
    /// POSIX sh elsewhere); conditions and notes are `#` comment lines.
    pub fn to_text(&self) -> String {
        let windows = self.os == Os::Windows;
        let shell = if windows { "PowerShell" } else { "sh" };
        let mut out = format!(
            "# plan for profile `{}` on {} ({shell})\n",
            self.profile,
            self.os.name()
        );
        if !self.sources.is_empty() {
            out.push_str("# values that reach a program or an .rdp file, and who set them:\n");
            for s in &self.sources {
                out.push_str(&format!("#   {}: {} ({})\n", s.what, s.from, s.trust));
            }
        }
        for step in &self.steps {
            if step.when.as_deref() == Some("not-signed-in") {
                out.push_str("# not signed in to this tenant: sign in first\n");
            }
            if let StepKind::Tunnel { port } = step.kind {
                out.push_str(&format!(
                    "# open the tunnel on {} (in the background)\n",
                    local_address(port)
                ));
            }
            if let Some((method, url)) = step.request() {
                // the request, then what it is for, under it (the step's name once)
                out.push_str(&format!("# {}: {method} {url}\n", step.name));
                if let Some(detail) = &step.detail {
                    out.push_str(&format!("#   {detail}\n"));
                }
            } else if step.argv.is_empty() || step.detail.is_some() {
                out.push_str(&format!(
                    "# {}: {}\n",
                    step.name,
                    step.detail.as_deref().unwrap_or("")
                ));
            }
            if step.argv.is_empty() {
                continue;
            }
            out.push_str(&crate::plan::shell::join(&step.argv, windows));
            out.push('\n');
        }
        out
    }

    /// The plan as JSON: a step that is an HTTP request has `request` (method and url, no
    /// token) instead of `argv`.
    pub fn to_json(&self) -> Value {
        let mut v = serde_json::to_value(self).unwrap_or(Value::Null);
        let steps = v.get_mut("steps").and_then(Value::as_array_mut);
        for (json, step) in steps.into_iter().flatten().zip(&self.steps) {
            if let (Some((method, url)), Value::Object(map)) = (step.request(), json) {
                map.remove("argv");
                map.insert(
                    "request".into(),
                    serde_json::json!({"method": method, "url": url}),
                );
            }
        }
        v
    }
}

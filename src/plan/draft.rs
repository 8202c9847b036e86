//! A plan with what it asks consent for: shown whole even when it is not approved (marked so it
//! cannot be pasted by accident), and run only when it is.

use serde_json::{Value, json};

use super::{Plan, PlanError};
use crate::profile::trust::{Consent, Request};

/// A plan and the person's answer to each request it makes.
#[derive(Debug, Clone)]
pub struct Draft {
    pub plan: Plan,
    /// Every request of the plan, with its consent.
    pub consents: Vec<(Request, Consent)>,
}

/// What a text line of a plan that is not approved begins with: a shell comment.
pub const NOT_APPROVED: &str = "# not approved: ";

/// The refusal for the requests that are not approved, if any.
pub(super) fn refusal(profile: &str, consents: &[(Request, Consent)]) -> Option<PlanError> {
    let unmet: Vec<(Request, Consent)> = consents
        .iter()
        .filter(|(_, c)| *c != Consent::Approved)
        .cloned()
        .collect();
    (!unmet.is_empty()).then(|| PlanError::Consent {
        profile: profile.to_string(),
        requests: unmet,
    })
}

impl Draft {
    /// Whether everything the plan asks for is approved.
    pub fn is_approved(&self) -> bool {
        self.consents.iter().all(|(_, c)| *c == Consent::Approved)
    }

    /// The refusal `run` ends with while something is not approved.
    pub fn refusal(&self) -> Option<PlanError> {
        refusal(&self.plan.profile, &self.consents)
    }

    /// The plan, when everything it asks for is approved.
    pub fn approved(self) -> Result<Plan, PlanError> {
        match self.refusal() {
            Some(e) => Err(e),
            None => Ok(self.plan),
        }
    }

    /// The plan as text; not approved, a header says so and how to approve it, and every
    /// command line is commented out.
    pub fn to_text(&self) -> String {
        let text = self.plan.to_text();
        if self.is_approved() {
            return text;
        }
        let name = &self.plan.profile;
        let mut out = format!(
            "# NOT APPROVED: profile `{name}` uses shared content you have not approved; this plan cannot run\n"
        );
        for (r, c) in self
            .consents
            .iter()
            .filter(|(_, c)| *c != Consent::Approved)
        {
            out.push_str(&format!(
                "#   {} at {} ({})\n",
                r.what,
                r.location,
                c.word(r)
            ));
        }
        out.push_str(&format!(
            "# review it with `bprof trust show {name}`, then approve it with `bprof trust allow {name}`\n"
        ));
        for line in text.lines() {
            if !line.starts_with('#') {
                out.push_str(NOT_APPROVED);
            }
            out.push_str(line);
            out.push('\n');
        }
        out
    }

    /// The plan's JSON plus `"approved"`; not approved, `"not_approved"` lists what is not.
    pub fn to_json(&self) -> Value {
        let mut v = self.plan.to_json();
        if let Value::Object(map) = &mut v {
            map.insert("approved".into(), Value::Bool(self.is_approved()));
            if !self.is_approved() {
                let list: Vec<Value> = self
                    .consents
                    .iter()
                    .filter(|(_, c)| *c != Consent::Approved)
                    .map(|(r, c)| {
                        json!({
                            "what": r.what,
                            "location": r.location,
                            "reasons": r.reasons,
                            "status": c.word(r),
                        })
                    })
                    .collect();
                map.insert("not_approved".into(), Value::Array(list));
            }
        }
        v
    }
}

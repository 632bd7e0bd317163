//! Governance policy: the `[[policies]]` rules as written, their validation, and the one
//! function that applies them to a request ([`Policy::decide`]).
//!
//! A rule *covers* a requested scope when its provider matches, its service matches (or
//! it names none) and it lists the scope (or lists none: then it covers every scope of the
//! provider, and the request as a whole for providers without scopes). For each scope:
//! - **who**: if any covering rule names `groups` or `subjects`, the user must be admitted
//!   by at least one of them (in `subjects`, or the rule's `claim` holds one of `groups`);
//! - **approval**: if any covering rule that admits the user says `approval = "admin"`, an
//!   administrator must approve;
//! - **lifetime**: the grant lives at most the shortest `max_lifetime_days` of all covering
//!   rules.
//!
//! Rules only add requirements, except that admission by any one rule suffices, so their
//! order never matters. A scope no rule covers is governed by the service's `allow` alone.

use std::collections::BTreeSet;

use super::PolicyRuleConfig;
use super::problems::Problems;
use crate::domain::policy::{Approval, Claims, Decision};
use crate::domain::{ProviderId, Scope, Scopes, ServiceId, Subject};

/// A validated rule.
#[derive(Debug, Clone)]
struct Rule {
    provider: ProviderId,
    service: Option<ServiceId>,
    /// Empty: every scope, and the request as a whole.
    scopes: BTreeSet<Scope>,
    claim: String,
    groups: BTreeSet<String>,
    subjects: BTreeSet<Subject>,
    approval: Approval,
    max_lifetime: Option<time::Duration>,
}

impl Rule {
    fn restricts_who(&self) -> bool {
        !self.groups.is_empty() || !self.subjects.is_empty()
    }

    fn admits(&self, subject: &Subject, claims: &Claims) -> bool {
        !self.restricts_who()
            || self.subjects.contains(subject)
            || claims.holds_any(&self.claim, &self.groups)
    }

    fn covers(&self, service: &ServiceId, provider: &ProviderId, scope: Option<&Scope>) -> bool {
        self.provider == *provider
            && self.service.as_ref().is_none_or(|s| s == service)
            && (self.scopes.is_empty() || scope.is_some_and(|s| self.scopes.contains(s)))
    }

    /// Who this rule admits, in words, for a refusal.
    fn who(&self) -> String {
        let mut parts = Vec::new();
        if !self.groups.is_empty() {
            let groups: Vec<&str> = self.groups.iter().map(String::as_str).collect();
            parts.push(format!("members of {}", groups.join(", ")));
        }
        if !self.subjects.is_empty() {
            parts.push("named users".to_owned());
        }
        parts.join(" and ")
    }
}

/// Every rule, validated.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    rules: Vec<Rule>,
}

impl Policy {
    pub(super) fn validate(
        written: &[PolicyRuleConfig],
        known_provider: impl Fn(&ProviderId) -> bool,
        known_service: impl Fn(&ServiceId) -> bool,
        errors: &mut Problems,
    ) -> Policy {
        let mut rules = Vec::new();
        for (i, r) in written.iter().enumerate() {
            let at = |field: &str| format!("policies[{i}].{field}");
            let provider = match ProviderId::parse(r.provider.as_str()) {
                Ok(p) if known_provider(&p) => Some(p),
                _ => {
                    errors.push(format!(
                        "{}: no provider with id `{}` is configured",
                        at("provider"),
                        r.provider
                    ));
                    None
                }
            };
            let service = match r.service.as_deref().map(ServiceId::parse) {
                None => Some(None),
                Some(Ok(s)) if known_service(&s) => Some(Some(s)),
                Some(_) => {
                    errors.push(format!(
                        "{}: no service with id `{}` is configured",
                        at("service"),
                        r.service.as_deref().unwrap_or_default()
                    ));
                    None
                }
            };
            let scopes = r
                .scopes
                .iter()
                .filter_map(|s| {
                    Scope::parse(s.as_str())
                        .map_err(|e| errors.push(format!("{}: `{s}`: {e}", at("scopes"))))
                        .ok()
                })
                .collect();
            let subjects = r
                .subjects
                .iter()
                .filter_map(|s| {
                    Subject::parse(s.as_str())
                        .map_err(|e| errors.push(format!("{}: `{s}`: {e}", at("subjects"))))
                        .ok()
                })
                .collect();
            if r.claim.trim().is_empty() {
                errors.push(format!("{}: must name a claim", at("claim")));
            }
            if r.groups.iter().any(|g| g.is_empty()) {
                errors.push(format!("{}: a group cannot be empty", at("groups")));
            }
            if r.max_lifetime_days == Some(0) {
                errors.push(format!("{}: must be at least 1", at("max_lifetime_days")));
            }
            let says_nothing = r.groups.is_empty()
                && r.subjects.is_empty()
                && r.approval == Approval::None
                && r.max_lifetime_days.is_none();
            if says_nothing {
                errors.push(format!(
                    "policies[{i}]: says nothing; give groups or subjects, approval or max_lifetime_days"
                ));
            }
            let (Some(provider), Some(service)) = (provider, service) else {
                continue;
            };
            rules.push(Rule {
                provider,
                service,
                scopes,
                claim: r.claim.clone(),
                groups: r.groups.iter().cloned().collect(),
                subjects,
                approval: r.approval,
                max_lifetime: r
                    .max_lifetime_days
                    .map(|d| time::Duration::days(i64::from(d))),
            });
        }
        Policy { rules }
    }

    /// The claims any rule reads: what sign-in keeps in the session.
    pub fn claims_read(&self) -> BTreeSet<&str> {
        self.rules
            .iter()
            .filter(|r| !r.groups.is_empty())
            .map(|r| r.claim.as_str())
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// What the rules say about `service` asking `subject` for `scopes` of `provider`.
    pub fn decide(
        &self,
        subject: &Subject,
        claims: &Claims,
        service: &ServiceId,
        provider: &ProviderId,
        scopes: &Scopes,
    ) -> Decision {
        let mut decision = Decision::default();
        // Each scope, or the request as a whole when it has none.
        let asked: Vec<Option<&Scope>> = if scopes.is_empty() {
            vec![None]
        } else {
            scopes.iter().map(Some).collect()
        };
        for scope in asked {
            let covering: Vec<&Rule> = self
                .rules
                .iter()
                .filter(|r| r.covers(service, provider, scope))
                .collect();
            let gatekeepers: Vec<&Rule> = covering
                .iter()
                .copied()
                .filter(|r| r.restricts_who())
                .collect();
            if !gatekeepers.is_empty() && !gatekeepers.iter().any(|r| r.admits(subject, claims)) {
                let who: Vec<String> = gatekeepers.iter().map(|r| r.who()).collect();
                let what =
                    scope.map_or_else(|| "this access".to_owned(), |s| format!("the scope `{s}`"));
                decision.refusals.push(format!(
                    "Your organisation's policy lets only {} grant {what}.",
                    who.join(" or ")
                ));
                continue;
            }
            if covering
                .iter()
                .any(|r| r.approval == Approval::Admin && r.admits(subject, claims))
            {
                decision.approval.insert(scope.cloned());
            }
            for limit in covering.iter().filter_map(|r| r.max_lifetime) {
                decision.max_lifetime = Some(decision.max_lifetime.map_or(limit, |m| m.min(limit)));
            }
        }
        decision
    }

    /// The rules in words, one line each, for the admin console.
    pub fn describe(&self) -> Vec<String> {
        self.rules
            .iter()
            .map(|r| {
                let mut line = format!("{}", r.provider);
                if let Some(s) = &r.service {
                    line.push_str(&format!(" via {s}"));
                }
                if r.scopes.is_empty() {
                    line.push_str(", every scope");
                } else {
                    let scopes: Vec<&str> = r.scopes.iter().map(Scope::as_str).collect();
                    line.push_str(&format!(", scopes {}", scopes.join(" ")));
                }
                if r.restricts_who() {
                    let mut who = Vec::new();
                    if !r.groups.is_empty() {
                        let groups: Vec<&str> = r.groups.iter().map(String::as_str).collect();
                        who.push(format!("`{}` holds {}", r.claim, groups.join(" or ")));
                    }
                    if !r.subjects.is_empty() {
                        let names: Vec<&str> = r.subjects.iter().map(Subject::as_str).collect();
                        who.push(format!("user is {}", names.join(", ")));
                    }
                    line.push_str(&format!(": only if {}", who.join(" or ")));
                }
                if r.approval == Approval::Admin {
                    line.push_str("; an administrator approves");
                }
                if let Some(l) = r.max_lifetime {
                    line.push_str(&format!("; grants last at most {} days", l.whole_days()));
                }
                line
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(toml_text: &str) -> PolicyRuleConfig {
        toml::from_str(toml_text).unwrap()
    }

    fn policy(rules: &[&str]) -> Policy {
        let written: Vec<_> = rules.iter().map(|r| rule(r)).collect();
        let mut problems = Problems {
            errors: Vec::new(),
            notes: Vec::new(),
            secret_files_optional: false,
        };
        let p = Policy::validate(&written, |_| true, |_| true, &mut problems);
        assert!(problems.errors.is_empty(), "{:?}", problems.errors);
        p
    }

    fn scopes(list: &[&str]) -> Scopes {
        Scopes::try_from(
            list.iter()
                .map(|s| Scope::parse(*s).unwrap())
                .collect::<Vec<_>>(),
        )
        .unwrap()
    }

    fn claims(groups: &[&str]) -> Claims {
        Claims::from_payload(&serde_json::json!({ "groups": groups }), ["groups"])
    }

    fn decide(p: &Policy, who: &str, groups: &[&str], asked: &[&str]) -> Decision {
        p.decide(
            &Subject::parse(who).unwrap(),
            &claims(groups),
            &ServiceId::parse("svc").unwrap(),
            &ProviderId::parse("github").unwrap(),
            &scopes(asked),
        )
    }

    #[test]
    fn a_scope_governed_by_group_is_refused_outside_it_and_granted_inside() {
        let p = policy(&[r#"provider = "github"
            scopes = ["admin:org"]
            groups = ["engineering"]"#]);
        let outside = decide(&p, "bob", &["staff"], &["repo", "admin:org"]);
        assert_eq!(
            outside.refusals,
            [
                "Your organisation's policy lets only members of engineering grant the scope `admin:org`."
            ]
        );
        assert!(!decide(&p, "ann", &["engineering"], &["admin:org"]).is_refused());
        assert!(
            !decide(&p, "bob", &["staff"], &["repo"]).is_refused(),
            "ungoverned scope"
        );
    }

    #[test]
    fn admission_by_any_rule_suffices_and_subjects_admit_by_name() {
        let p = policy(&[
            r#"provider = "github"
               groups = ["engineering"]"#,
            r#"provider = "github"
               subjects = ["carol"]"#,
        ]);
        assert!(!decide(&p, "carol", &[], &["repo"]).is_refused());
        assert!(decide(&p, "dave", &[], &["repo"]).is_refused());
    }

    #[test]
    fn approval_and_the_shortest_lifetime_apply_to_admitted_users() {
        let p = policy(&[
            r#"provider = "github"
               scopes = ["delete_repo"]
               approval = "admin"
               max_lifetime_days = 7"#,
            r#"provider = "github"
               max_lifetime_days = 90"#,
        ]);
        let d = decide(&p, "ann", &[], &["repo", "delete_repo"]);
        assert!(!d.is_refused());
        assert_eq!(
            d.approval,
            BTreeSet::from([Some(Scope::parse("delete_repo").unwrap())])
        );
        assert_eq!(d.max_lifetime, Some(time::Duration::days(7)));
        let plain = decide(&p, "ann", &[], &["repo"]);
        assert!(!plain.needs_approval());
        assert_eq!(plain.max_lifetime, Some(time::Duration::days(90)));
    }

    #[test]
    fn a_rule_for_another_service_does_not_apply() {
        let p = policy(&[r#"provider = "github"
            service = "other"
            groups = ["engineering"]"#]);
        assert!(!decide(&p, "bob", &[], &["repo"]).is_refused());
    }

    #[test]
    fn a_rule_that_says_nothing_or_names_unknown_things_is_refused() {
        let written = vec![
            rule(r#"provider = "github""#),
            rule(
                r#"provider = "nope"
                   groups = ["x"]"#,
            ),
        ];
        let mut problems = Problems {
            errors: Vec::new(),
            notes: Vec::new(),
            secret_files_optional: false,
        };
        Policy::validate(
            &written,
            |p| p.as_str() == "github",
            |_| true,
            &mut problems,
        );
        assert_eq!(problems.errors.len(), 2, "{:?}", problems.errors);
        assert!(problems.errors[0].contains("says nothing"));
        assert!(problems.errors[1].contains("no provider with id `nope`"));
    }
}

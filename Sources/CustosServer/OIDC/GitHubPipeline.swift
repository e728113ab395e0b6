import CustosCore

/// What a verified GitHub Actions ID token says about the run that holds it, as the event
/// model's pipeline context (README "GitHub Actions OIDC" has the table).
public enum GitHubPipeline {
    /// `repository` → repository, `workflow` → name, `job_workflow_ref` (else `workflow_ref`)
    /// → id, `run_id` → runID, `run_attempt` (a string of digits) → attempt, `environment` →
    /// environment, `event_name` → trigger (`workflow_dispatch`: manual; any other event,
    /// such as push, pull_request, schedule, workflow_run: automated), `actor` →
    /// triggerIdentity, the HTTP peer's address → runnerIP. The token has no job, step or
    /// scope: those stay empty here.
    public static func pipeline(_ token: OIDCToken, runnerIP: String?) -> AccessEvent.Pipeline {
        func s(_ name: String) -> String? {
            guard let v = token.string(name), !v.isEmpty, v.utf8.count <= 1024 else { return nil }
            return v
        }
        var attempt: Int?
        if let a = s("run_attempt"), a.utf8.count <= 7, a.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), let n = Int(a), n <= 1_000_000 {
            attempt = n
        }
        var trigger: AccessEvent.Pipeline.Trigger?
        if let e = s("event_name") { trigger = e == "workflow_dispatch" ? .manual : .automated }
        return AccessEvent.Pipeline(provider: "github", repository: s("repository"), name: s("workflow"),
                                    id: s("job_workflow_ref") ?? s("workflow_ref"), runID: s("run_id"), attempt: attempt,
                                    environment: s("environment"), trigger: trigger, triggerIdentity: s("actor"),
                                    runnerIP: runnerIP)
    }

    /// Stamps the token's context on an event ingested with it. The token is the truth: its
    /// pipeline replaces whatever the body claimed, except `job`, `step` and `scope`, which
    /// a GitHub token does not carry and which are kept from the body. An event whose
    /// identity is unknown (no id, no name) is attributed to the pipeline: kind `pipeline`,
    /// method `oidc`, id the token's `sub`, name the repository. A known identity (the
    /// secret store's record of who accessed) is kept.
    public static func stamp(_ event: inout AccessEvent, with p: AccessEvent.Pipeline, token: OIDCToken) {
        var q = p
        if let body = event.pipeline {
            if q.job == nil { q.job = body.job }
            if q.step == nil { q.step = body.step }
            if q.scope.isEmpty { q.scope = body.scope }
        }
        event.pipeline = q
        let i = event.identity
        if i.kind == .unknown && i.id == nil && i.name == nil {
            var sub = token.subject
            if let s = sub, s.isEmpty || s.utf8.count > 1024 { sub = nil }
            event.identity = AccessEvent.Identity(id: sub,
                                                  name: q.repository, kind: .pipeline, method: "oidc", policies: i.policies)
        }
    }
}

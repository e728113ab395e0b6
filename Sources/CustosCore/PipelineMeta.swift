/// The CI claims a Vault/OpenBao token can carry in its metadata, and the pipeline context
/// they give an event.
///
/// A pipeline that logs in with the `jwt` auth method (GitHub Actions or GitLab CI ID
/// tokens) gets the claims its role's `claim_mappings` name copied into the token's
/// metadata, and the audit device logs that metadata in clear text with every request the
/// token makes. Mapping each claim to a metadata key of the same name (README, "CI/CD
/// pipelines") lets every secret read say which repository, workflow and run made it.
public enum PipelineMeta {
    /// Metadata keys read, by index. GitHub Actions claims first, then GitLab CI's.
    public static let keys: [String] = [
        "repository", "workflow", "job_workflow_ref", "workflow_ref", "run_id", "run_attempt",
        "environment", "event_name", "actor", "job",
        "project_path", "pipeline_id", "pipeline_source", "user_login", "job_id", "ci_config_ref_uri",
    ]

    static let staticKeys: [StaticString] = [
        "repository", "workflow", "job_workflow_ref", "workflow_ref", "run_id", "run_attempt",
        "environment", "event_name", "actor", "job",
        "project_path", "pipeline_id", "pipeline_source", "user_login", "job_id", "ci_config_ref_uri",
    ]

    static func index(_ k: JSONScanner.Key) -> Int? {
        for (i, key) in staticKeys.enumerated() where k.equals(key) { return i }
        return nil
    }

    /// The pipeline context of the claims (`values` by `keys` index), or nil when none
    /// identifies a repository, project, workflow or run. `runnerIP` is where the request
    /// came from (the runner, when the token is a pipeline's).
    public static func pipeline(_ values: [String?], runnerIP: String?) -> AccessEvent.Pipeline? {
        guard values.count == keys.count else { return nil }
        func v(_ i: Int) -> String? { values[i].flatMap { $0.isEmpty ? nil : $0 } }
        let github = v(0) != nil || v(1) != nil || v(2) != nil || v(3) != nil || v(4) != nil
        let gitlab = v(10) != nil || v(11) != nil
        guard github || gitlab else { return nil }
        var p = AccessEvent.Pipeline()
        if gitlab && !github {
            p.provider = "gitlab"
            p.repository = v(10)
            p.id = v(15)
            p.runID = v(11)
            p.job = v(14)
            p.triggerIdentity = v(13)
            p.trigger = v(12).map(gitlabTrigger)
        } else {
            p.provider = "github"
            p.repository = v(0)
            p.name = v(1)
            p.id = v(2) ?? v(3)
            p.runID = v(4)
            p.attempt = v(5).flatMap { Int($0) }.flatMap { (0...1_000_000).contains($0) ? $0 : nil }
            p.job = v(9)
            p.triggerIdentity = v(8)
            p.trigger = v(7).map(githubTrigger)
        }
        p.environment = v(6)
        p.runnerIP = runnerIP
        return p
    }

    /// GitHub's `event_name`: `workflow_dispatch` (the Run workflow button, the API or `gh
    /// workflow run`) is a person starting the run by hand; push, schedule, pull_request, … are not.
    public static func githubTrigger(_ eventName: String) -> AccessEvent.Pipeline.Trigger {
        eventName == "workflow_dispatch" ? .manual : .automated
    }

    /// GitLab's `pipeline_source` / `CI_PIPELINE_SOURCE`: `web` (Run pipeline button) and
    /// `api`/`chat` are started by a person; push, schedule, merge_request_event, trigger, … are not.
    public static func gitlabTrigger(_ source: String) -> AccessEvent.Pipeline.Trigger {
        source == "web" || source == "api" || source == "chat" ? .manual : .automated
    }
}

/// The pipeline detectors: `pipeline_out_of_scope`, `runner_unknown_ip`,
/// `manual_prod_trigger` and `leaked_secret`. They look only at events with a pipeline
/// context (or leak reports), so other events pay one nil check.
extension DetectionEngine {
    /// One `pipelines.scopes` entry, compiled.
    final class PipelineScopeRule: Sendable {
        let provider: CompiledGlob?
        let repository: CompiledGlob
        let workflow: CompiledGlob?
        let environment: String?
        let secrets: [CompiledGlob]
        let secretText: [String]
        let cidrs: [CIDR]?
        init(_ s: Policy.PipelineScope, networks: [String: [CIDR]]) {
            provider = s.provider.map(CompiledGlob.init)
            repository = CompiledGlob(s.repository)
            workflow = s.workflow.map(CompiledGlob.init)
            environment = s.environment
            secrets = s.secrets.map(CompiledGlob.init)
            secretText = s.secrets
            cidrs = s.runnerNetworks.map { $0.flatMap { networks[$0] ?? [] } }
        }

        func matches(_ p: AccessEvent.Pipeline) -> Bool {
            if let provider, !provider.matches(p.provider ?? "") { return false }
            guard repository.matches(p.repository ?? "") else { return false }
            if let workflow {
                guard (p.name.map(workflow.matches) ?? false) || (p.id.map(workflow.matches) ?? false) else { return false }
            }
            if let environment, p.environment != environment { return false }
            return true
        }
    }

    struct PipelineRules: Sendable {
        let scopes: [PipelineScopeRule]
        let runnerCIDRs: [CIDR]
        let production: [String]
        let manual: [CompiledGlob]
        init(_ policy: Policy) {
            let pl = policy.pipelines
            scopes = pl.scopes.map { PipelineScopeRule($0, networks: policy.networks) }
            runnerCIDRs = pl.runnerNetworks.flatMap { policy.networks[$0] ?? [] }
            production = pl.production
            manual = pl.manualTriggers.map(CompiledGlob.init)
        }
    }

    /// "octo-org/payments deploy run 1001 attempt 2" — as much as the context says.
    static func runLabel(_ p: AccessEvent.Pipeline?) -> String {
        guard let p else { return "an unknown run" }
        var parts: [String] = []
        if let r = p.repository { parts.append(r) }
        if let n = p.name { parts.append(n) }
        if let r = p.runID { parts.append("run \(r)") }
        if let a = p.attempt, a > 1 { parts.append("attempt \(a)") }
        if let j = p.job { parts.append("job \(j)") }
        return parts.isEmpty ? "an unnamed \(p.provider ?? "pipeline") run" : parts.joined(separator: " ")
    }

    /// What every pipeline alert carries about the run (in `details`).
    static func runDetails(_ p: AccessEvent.Pipeline?) -> [String: String] {
        guard let p else { return [:] }
        var d: [String: String] = [:]
        d["provider"] = p.provider
        d["repository"] = p.repository
        d["workflow"] = p.name
        d["run_id"] = p.runID
        d["attempt"] = p.attempt.map(String.init)
        d["job"] = p.job
        d["environment"] = p.environment
        d["trigger"] = p.trigger?.rawValue
        d["trigger_identity"] = p.triggerIdentity
        d["runner_ip"] = p.runnerIP
        return d
    }

    mutating func pipelineChecks(_ e: AccessEvent, _ ctx: Context, into out: inout [Alert]) {
        let pl = e.pipeline
        let path = e.secret?.path
        let rules = pipelineRules

        // leaked_secret: a leak report is not an access itself; nothing else applies to it.
        if e.action == .leak {
            if isOn(.leaked_secret) {
                var details = Self.runDetails(pl)
                details["variant"] = e.reason
                raise(.leaked_secret, entity: "\(pl?.repository ?? "")\u{0}\(pl?.runID ?? "")\u{0}\(path ?? "")", e, ctx,
                      summary: "the value of \(path ?? "a secret") was found in the build log of \(Self.runLabel(pl))\(e.reason.map { " (\($0))" } ?? ""): rotate it now, then purge the log",
                      details: details, into: &out)
            } else { countLogged(.leaked_secret) }
            return
        }
        guard let pl else { return }
        let matching = rules.scopes.filter { $0.matches(pl) }

        // pipeline_out_of_scope: a secret outside every matching scope entry (or outside the
        // run's own stated scope when the policy has no scopes).
        if let path, Self.isSecretAccess(e.action) {
            var allowed: [CompiledGlob]?
            var allowedText: [String] = []
            if !rules.scopes.isEmpty {
                allowed = matching.flatMap(\.secrets)
                var seen = Set<String>()
                allowedText = matching.flatMap(\.secretText).filter { seen.insert($0).inserted }
            } else if !pl.scope.isEmpty {
                allowed = pl.scope.map(CompiledGlob.init)
                allowedText = pl.scope
            }
            if let allowed, !allowed.contains(where: { $0.matches(path) }) {
                if isOn(.pipeline_out_of_scope) {
                    var details = Self.runDetails(pl)
                    details["scope"] = allowedText.joined(separator: ",")
                    let why = matching.isEmpty && !rules.scopes.isEmpty
                        ? "no pipelines.scopes entry covers this repository and workflow"
                        : "outside its scope \(allowedText.joined(separator: ", "))"
                    raise(.pipeline_out_of_scope, entity: "\(pl.repository ?? "")\u{0}\(pl.name ?? pl.id ?? "")\u{0}\(path)", e, ctx,
                          summary: "pipeline \(Self.runLabel(pl)) \(e.action) \(path) (\(e.outcome)): \(why)",
                          details: details, into: &out)
                } else { countLogged(.pipeline_out_of_scope) }
            }
        }

        // runner_unknown_ip: the runner (or, lacking it, the request's address) outside the
        // runner networks of the matching scope entries, else the global ones.
        let scoped = matching.compactMap(\.cidrs)
        let cidrs = scoped.isEmpty ? rules.runnerCIDRs : scoped.flatMap { $0 }
        if !cidrs.isEmpty, let text = pl.runnerIP ?? e.origin?.ip, let ip = Self.parseIP(text) {
            if !cidrs.contains(where: { $0.contains(ip) }) {
                if isOn(.runner_unknown_ip) {
                    raise(.runner_unknown_ip, entity: "\(pl.repository ?? "")\u{0}\(ip)", e, ctx,
                          summary: "pipeline \(Self.runLabel(pl)) ran on \(ip), outside the runner networks",
                          details: Self.runDetails(pl), into: &out)
                } else { countLogged(.runner_unknown_ip) }
            }
        }

        // manual_prod_trigger: started by hand, production, by someone not allowed to.
        if pl.trigger == .manual {
            let env = pl.environment ?? alertSecret(e)?.environment
            if let env, rules.production.contains(env) {
                let who = pl.triggerIdentity
                if !(who.map { w in rules.manual.contains { $0.matches(w) } } ?? false) {
                    if isOn(.manual_prod_trigger) {
                        raise(.manual_prod_trigger, entity: "\(pl.repository ?? "")\u{0}\(pl.runID ?? e.id)", e, ctx,
                              summary: "\(who ?? "an unknown identity") started the \(env) pipeline \(Self.runLabel(pl)) by hand and is not in pipelines.manual_triggers",
                              details: Self.runDetails(pl), into: &out)
                    } else { countLogged(.manual_prod_trigger) }
                }
            }
        }
    }
}
